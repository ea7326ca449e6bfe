use serde::Serialize;
use utoipa::ToSchema;

/// One page of a listing ordered by id: `{"items":[…],"next_after_id":42}`, where
/// `next_after_id` is `null` on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// In ascending order of id.
    pub items: Vec<T>,
    /// The id of the last item, to pass as `after_id` for the next page; `null` on the
    /// last page.
    #[schema(required = true, minimum = 1, format = Int64)]
    pub next_after_id: Option<i64>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only tells that another
    /// page follows, so no second query is needed to know.
    pub fn from_rows(mut rows: Vec<T>, limit: i64, id_of: impl Fn(&T) -> i64) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let next_after_id = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(&id_of)
        } else {
            None
        };
        Self {
            items: rows,
            next_after_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_row_marks_a_next_page() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |id| *id);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next_after_id, Some(2));
        let last = Page::from_rows(vec![1, 2], 2, |id| *id);
        assert_eq!(last.next_after_id, None);
        let empty = Page::from_rows(Vec::<i64>::new(), 2, |id| *id);
        assert_eq!(empty.next_after_id, None);
    }
}
