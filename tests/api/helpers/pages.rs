//! Reading the API's JSON: ids, pages and the walk through a paginated listing.

use serde_json::Value;

use super::TestApp;

/// The id of a resource body.
pub fn id_of(resource: &Value) -> i64 {
    resource["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no integer id in {resource}"))
}

pub fn ids_of(resources: &[Value]) -> Vec<i64> {
    resources.iter().map(id_of).collect()
}

/// The ids of a page's items.
pub fn item_ids(page: &Value) -> Vec<i64> {
    ids_of(&items_of(&page["items"]))
}

pub fn items_of(value: &Value) -> Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected a JSON array, got {value}"))
        .clone()
}

pub fn keys_of(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("expected a JSON object, got {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// `GET path`, checked to answer 200 with a JSON object of exactly these fields.
#[track_caller]
pub fn get_object(app: &TestApp, path: &str, fields: &[&str]) -> Value {
    let response = app.get(path);
    assert_eq!(response.status, 200, "GET {path}: {}", response.text);
    assert_eq!(
        keys_of(&response.body),
        fields,
        "GET {path}: fields: {}",
        response.text
    );
    response.body
}

/// One page of a listing, checked for shape: `{"items":[…],"next_after_id":…}`.
#[track_caller]
pub fn get_page(app: &TestApp, path: &str) -> (Vec<Value>, Option<i64>) {
    let body = get_object(app, path, &["items", "next_after_id"]);
    let next = &body["next_after_id"];
    assert!(
        next.is_null() || next.as_i64().is_some(),
        "GET {path}: next_after_id must be null or an integer: {next}"
    );
    (items_of(&body["items"]), next.as_i64())
}

/// Follows `next_after_id` from the first page of `path` (which has a query string, e.g.
/// `/orders?limit=3`) to the last, checking every page, and returns all items in order
/// and the number of pages.
#[track_caller]
pub fn walk_pages(app: &TestApp, path: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut all = Vec::new();
    let mut pages = 0;
    let mut url = path.to_owned();
    loop {
        let (items, next) = get_page(app, &url);
        pages += 1;
        assert!(
            items.len() <= limit,
            "GET {url}: {} items on a page of limit {limit}",
            items.len()
        );
        let ids = ids_of(&items);
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "GET {url}: ids not ascending: {ids:?}"
        );
        if let (Some(&first), Some(previous)) = (ids.first(), all.last().map(id_of)) {
            assert!(
                first > previous,
                "GET {url}: page starts at {first}, not after {previous}"
            );
        }
        all.extend(items);
        match next {
            None => break,
            Some(next) => {
                assert_eq!(
                    ids.len(),
                    limit,
                    "GET {url}: a page followed by another holds `limit` items"
                );
                assert_eq!(
                    Some(&next),
                    ids.last(),
                    "GET {url}: next_after_id is the last id of the page"
                );
                url = format!("{path}&after_id={next}");
            }
        }
        assert!(pages <= 10_000, "GET {path}: pagination does not end");
    }
    (all, pages)
}

/// A path of `template` that names resources which exist, while they do.
pub fn concrete_path(template: &str, user: i64, order: i64) -> String {
    let id = if template.starts_with("/orders") {
        order
    } else {
        user
    };
    template
        .replace("{id}", &id.to_string())
        .replace("{file}", "swagger-ui.css")
}
