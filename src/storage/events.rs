//! Published events as operators read them (the console's events page, issue 17): the row
//! types and the queries both backends run, written once with the backend's parameter marks.
//!
//! Events are listed through `events_time (created_at, id)`, newest first, so a page costs
//! its rows whatever the table holds; nothing counts the whole table. A name filter has no
//! index of its own (one more b-tree for every publish to write): it walks the time index
//! back until the page is full, which for a rare name can be much of the table. Where each event went is
//! one grouped count over its deliveries, found through the deliveries' event index (finished
//! rows) and the queue (queued ones), as `super::deliveries` reads them.

use super::deliveries::{Arg, DeliveryStatus};
use super::schema::Marks;
use super::Page;

/// Which events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// An event name (`User.Created`).
    pub name: Option<String>,
    pub page: Page,
}

/// One stored event and where it was delivered.
#[derive(Debug, Clone)]
pub struct PublishedEvent {
    pub id: String,
    pub name: String,
    /// The payload as stored, JSON without `hookId` (each delivery adds its hook's).
    pub payload: String,
    /// Epoch ms.
    pub created_at: i64,
    /// Its deliveries by status; all zero for an event no hook subscribed to.
    pub deliveries: DeliveryCounts,
}

/// How many deliveries of an event are in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub queued: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl DeliveryCounts {
    pub fn total(&self) -> u64 {
        self.queued + self.succeeded + self.failed + self.skipped
    }

    /// Adds `n` deliveries in the `state` column's value `state` (unknown states are not
    /// counted).
    pub(crate) fn add(&mut self, state: i64, n: u64) {
        match DeliveryStatus::from_state(state) {
            Some(DeliveryStatus::Queued) => self.queued += n,
            Some(DeliveryStatus::Succeeded) => self.succeeded += n,
            Some(DeliveryStatus::Failed) => self.failed += n,
            Some(DeliveryStatus::Skipped) => self.skipped += n,
            None => {}
        }
    }
}

/// The page query of `q` and its arguments; it takes two more after them, the rows to take
/// and to skip. Columns: `id, name, payload, created_at`.
pub(crate) fn list_sql(q: &EventQuery, marks: Marks) -> (String, Vec<Arg>) {
    let mut args = Vec::new();
    let filter = match &q.name {
        Some(name) => {
            args.push(Arg::Text(name.clone()));
            format!("WHERE name = {}", marks.at(1))
        }
        None => String::new(),
    };
    let sql = format!(
        "SELECT id, name, payload, created_at FROM events {filter} \
         ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {}",
        marks.at(args.len() + 1),
        marks.at(args.len() + 2)
    );
    (sql, args)
}

/// One event by id (argument 1), with the columns of [`list_sql`].
pub(crate) fn get_sql(marks: Marks) -> String {
    format!(
        "SELECT id, name, payload, created_at FROM events WHERE id = {}",
        marks.at(1)
    )
}

/// The deliveries of `n` events (arguments 1 to n, their ids) counted by event and state:
/// columns `event_id, state, n`.
pub(crate) fn counts_sql(n: usize, marks: Marks) -> String {
    let ids = (1..=n).map(|i| marks.at(i)).collect::<Vec<_>>().join(", ");
    format!(
        "SELECT event_id, state, COUNT(*) AS n FROM deliveries \
         WHERE state <> 0 AND event_id IN ({ids}) GROUP BY event_id, state \
         UNION ALL \
         SELECT event_id, state, COUNT(*) AS n FROM deliveries \
         WHERE state = 0 AND event_id IN ({ids}) GROUP BY event_id, state"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_filter_shifts_the_page_arguments() {
        let (sql, args) = list_sql(&EventQuery::default(), Marks::Dollar);
        assert!(sql.ends_with("LIMIT $1 OFFSET $2"), "{sql}");
        assert!(args.is_empty());
        let q = EventQuery {
            name: Some("User.Created".into()),
            ..Default::default()
        };
        let (sql, args) = list_sql(&q, Marks::Question);
        assert!(sql.contains("WHERE name = ?1"), "{sql}");
        assert!(sql.ends_with("LIMIT ?2 OFFSET ?3"), "{sql}");
        assert_eq!(args.len(), 1);
        assert_eq!(
            counts_sql(2, Marks::Dollar).matches("IN ($1, $2)").count(),
            2
        );
    }

    #[test]
    fn counts_add_up_by_status() {
        let mut c = DeliveryCounts::default();
        for (state, n) in [(0, 1), (1, 2), (2, 3), (3, 4), (9, 100)] {
            c.add(state, n);
        }
        assert_eq!((c.queued, c.succeeded, c.failed, c.skipped), (1, 2, 3, 4));
        assert_eq!(c.total(), 10);
    }
}
