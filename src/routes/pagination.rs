//! Logto's pagination: `page` (from 1) and `page_size` (default 20, at most 100), answered with
//! a `Total-Number` header and a `Link` header (RFC 8288) to the first, previous, next and last
//! pages.

use super::error::ApiError;
use super::extract::QueryMap;
use crate::storage::Page;
use axum::http::{HeaderMap, HeaderValue, Uri};

pub const DEFAULT_PAGE_SIZE: i64 = 20;
pub const MAX_PAGE_SIZE: i64 = 100;

#[derive(Debug, Clone, Copy)]
pub struct Pagination {
    pub page: i64,
    pub page_size: i64,
}

impl Pagination {
    /// Reads `page`/`page_size`. With `optional`, a request that names neither gets everything.
    pub fn from_query(q: &QueryMap, optional: bool) -> Result<Option<Self>, ApiError> {
        let page = q.int("page", 1..=i64::from(u32::MAX))?;
        let page_size = q.int("page_size", 1..=MAX_PAGE_SIZE)?;
        if optional && page.is_none() && page_size.is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            page: page.unwrap_or(1),
            page_size: page_size.unwrap_or(DEFAULT_PAGE_SIZE),
        }))
    }

    pub fn as_page(self) -> Page {
        Page {
            limit: self.page_size as u32,
            offset: ((self.page - 1) * self.page_size) as u64,
        }
    }

    /// `Total-Number` and `Link` for a listing at `uri` with `total` rows.
    pub fn headers(self, uri: &Uri, total: u64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("total-number", HeaderValue::from(total));
        let last = ((total as i64 + self.page_size - 1) / self.page_size).max(1);
        let other: Vec<(String, String)> =
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .filter(|(k, _)| k != "page" && k != "page_size")
                .collect();
        let link = |page: i64, rel: &str| {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.extend_pairs(other.iter());
            q.append_pair("page", &page.to_string());
            q.append_pair("page_size", &self.page_size.to_string());
            format!("<{}?{}>; rel=\"{rel}\"", uri.path(), q.finish())
        };
        let mut links = vec![link(1, "first")];
        if self.page > 1 {
            links.push(link((self.page - 1).min(last), "prev"));
        }
        if self.page < last {
            links.push(link(self.page + 1, "next"));
        }
        links.push(link(last, "last"));
        if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
            h.insert("link", v);
        }
        h
    }
}
