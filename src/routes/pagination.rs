//! Logto's pagination (`koaPagination`): `page` (from 1) and `page_size` (default 20, at most
//! 100). A paginated answer carries `Total-Number` and `Link` (RFC 8288): one header line per
//! relation, in the order first, prev, last, next, each an absolute URL that keeps every other
//! query parameter. A list whose pagination is optional answers neither header unless `page`
//! or `page_size` is given. A `page` or `page_size` that is not a positive integer (or a
//! `page_size` over 100) answers 400 `guard.invalid_pagination`.

use super::error::ApiError;
use super::extract::QueryMap;
use crate::storage::Page;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};

pub const DEFAULT_PAGE_SIZE: i64 = 20;
pub const MAX_PAGE_SIZE: i64 = 100;

#[derive(Debug, Clone, Copy)]
pub struct Pagination {
    pub page: i64,
    pub page_size: i64,
}

fn invalid() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "guard.invalid_pagination",
        format!("`page` must be a positive integer and `page_size` one from 1 to {MAX_PAGE_SIZE}."),
    )
}

/// A positive integer parameter; an empty one counts as absent (as in Logto).
fn positive(q: &QueryMap, key: &str, max: i64) -> Result<Option<i64>, ApiError> {
    match q.0.get(key).map(|v| v.trim()) {
        None | Some("") => Ok(None),
        Some(raw) => match raw.parse::<i64>() {
            Ok(v) if (1..=max).contains(&v) => Ok(Some(v)),
            _ => Err(invalid()),
        },
    }
}

impl Pagination {
    /// Reads `page`/`page_size`. With `optional`, a request that names neither gets
    /// everything (`None`).
    pub fn from_query(q: &QueryMap, optional: bool) -> Result<Option<Self>, ApiError> {
        let page = positive(q, "page", i64::from(u32::MAX))?;
        let page_size = positive(q, "page_size", MAX_PAGE_SIZE)?;
        if optional && page.is_none() && page_size.is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            page: page.unwrap_or(1),
            page_size: page_size.unwrap_or(DEFAULT_PAGE_SIZE),
        }))
    }

    /// Reads `page`/`page_size` for a list that is always paginated (20 a page by default).
    pub fn always(q: &QueryMap) -> Result<Self, ApiError> {
        Ok(Self::from_query(q, false)?.unwrap_or(Self {
            page: 1,
            page_size: DEFAULT_PAGE_SIZE,
        }))
    }

    pub fn as_page(self) -> Page {
        Page {
            limit: self.page_size as u32,
            offset: ((self.page - 1) * self.page_size) as u64,
        }
    }

    /// `Total-Number` and `Link` for a listing at `uri` with `total` rows. The links are
    /// absolute: `http://` and the request's `Host` (hookline serves plain HTTP; behind a TLS
    /// proxy, a client follows the path and query).
    pub fn headers(self, request: &HeaderMap, uri: &Uri, total: u64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("total-number", HeaderValue::from(total));
        let last = ((total as i64 + self.page_size - 1) / self.page_size).max(1);
        let origin = request
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(|host| format!("http://{host}"))
            .unwrap_or_default();
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        // Logto's `buildLink`: the query as given, `page` replaced in place (or appended).
        let link = |page: i64, rel: &str| {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            let mut placed = false;
            for (k, v) in &query {
                if k == "page" {
                    if !placed {
                        q.append_pair("page", &page.to_string());
                        placed = true;
                    }
                } else {
                    q.append_pair(k, v);
                }
            }
            if !placed {
                q.append_pair("page", &page.to_string());
            }
            format!("<{origin}{}?{}>; rel=\"{rel}\"", uri.path(), q.finish())
        };
        let mut links = vec![link(1, "first")];
        if self.page > 1 {
            links.push(link(self.page - 1, "prev"));
        }
        links.push(link(last, "last"));
        if self.page < last {
            links.push(link(self.page + 1, "next"));
        }
        for l in links {
            if let Ok(v) = HeaderValue::from_str(&l) {
                h.append(header::LINK, v);
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_absolute_one_per_line_in_logtos_order() {
        let mut req = HeaderMap::new();
        req.insert(header::HOST, HeaderValue::from_static("h.test:3001"));
        let uri: Uri = "/api/users?search=a&page=2&page_size=5".parse().unwrap();
        let p = Pagination {
            page: 2,
            page_size: 5,
        };
        let h = p.headers(&req, &uri, 16);
        assert_eq!(h["total-number"], "16");
        let links: Vec<&str> = h
            .get_all(header::LINK)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            links,
            [
                r#"<http://h.test:3001/api/users?search=a&page=1&page_size=5>; rel="first""#,
                r#"<http://h.test:3001/api/users?search=a&page=1&page_size=5>; rel="prev""#,
                r#"<http://h.test:3001/api/users?search=a&page=4&page_size=5>; rel="last""#,
                r#"<http://h.test:3001/api/users?search=a&page=3&page_size=5>; rel="next""#,
            ]
        );
    }

    #[test]
    fn bad_values_are_invalid_pagination() {
        let q = |s: &str| {
            QueryMap(
                url::form_urlencoded::parse(s.as_bytes())
                    .into_owned()
                    .collect(),
            )
        };
        for bad in [
            "page=0",
            "page=x",
            "page_size=101",
            "page_size=-1",
            "page=1.5",
        ] {
            let e = Pagination::from_query(&q(bad), true).unwrap_err();
            assert_eq!(e.code, "guard.invalid_pagination", "{bad}");
        }
        assert!(Pagination::from_query(&q("page="), true).unwrap().is_none());
        assert!(Pagination::from_query(&q(""), false).unwrap().is_some());
    }
}
