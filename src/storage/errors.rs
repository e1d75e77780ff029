//! Driver errors mapped onto [`StoreError`], so that nothing above the storage layer sees a
//! sqlx or rusqlite type. The one decision made here is which failures are *unavailable*
//! (worth retrying later, answered 503) and which are plain database errors (answered 500).

use super::StoreError;

/// PostgreSQL SQLSTATE classes and codes that mean "not now" rather than "never": class 08
/// (connection exception), 53 (insufficient resources), 57P01–57P03 (admin or crash shutdown,
/// cannot connect now). PostgreSQL's "Appendix A. Error Codes".
fn postgres_unavailable(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// SQLite primary result codes that mean "not now": BUSY (5), LOCKED (6), NOMEM (7),
/// IOERR (10), FULL (13), CANTOPEN (14) (<https://sqlite.org/rescode.html>). Extended codes
/// carry the primary code in their low byte.
fn sqlite_unavailable(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6 | 7 | 10 | 13 | 14)
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => {
                StoreError::Unavailable(e.to_string())
            }
            E::Database(db) => {
                let unavailable = db.code().is_some_and(|code| {
                    postgres_unavailable(&code) || code.parse::<i32>().is_ok_and(sqlite_unavailable)
                });
                // 40001 serialization_failure, 40P01 deadlock_detected: a concurrent
                // transaction got there first. (A unique key taken by a concurrent serializable
                // change that had read it first is reported as 40001 too; a plain 23505 is a
                // duplicate, not a race.)
                let contended = db.code().is_some_and(|c| matches!(&*c, "40001" | "40P01"))
                    && db
                        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                        .is_some();
                if unavailable {
                    StoreError::Unavailable(e.to_string())
                } else if contended {
                    StoreError::Contention(e.to_string())
                } else {
                    StoreError::Database(e.to_string())
                }
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        match e {
            sqlx::migrate::MigrateError::Execute(inner) => match StoreError::from(inner) {
                StoreError::Unavailable(m) => StoreError::Unavailable(m),
                other => StoreError::Migration(other.to_string()),
            },
            other => StoreError::Migration(other.to_string()),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if sqlite_unavailable(f.extended_code) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

impl From<rusqlite::Error> for super::identity::IdentityError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_and_resource_failures_are_unavailable_and_the_rest_are_not() {
        for code in ["08006", "08001", "53300", "57P01", "57P03"] {
            assert!(postgres_unavailable(code), "{code}");
        }
        for code in ["23505", "40001", "42P01", "57014"] {
            assert!(!postgres_unavailable(code), "{code}");
        }
        // SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT (517), SQLITE_FULL, SQLITE_IOERR_WRITE (778).
        for code in [5, 517, 13, 778] {
            assert!(sqlite_unavailable(code), "{code}");
        }
        // SQLITE_CONSTRAINT, SQLITE_CONSTRAINT_UNIQUE (2067), SQLITE_ERROR.
        for code in [19, 2067, 1] {
            assert!(!sqlite_unavailable(code), "{code}");
        }
        assert!(matches!(
            StoreError::from(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            StoreError::from(sqlx::Error::RowNotFound),
            StoreError::Database(_)
        ));
    }
}
