//! Aggregates Diesel's query builder lacks: window aggregates, and `SUM` typed as a
//! `BIGINT` on every backend (PostgreSQL's `SUM(bigint)` is `NUMERIC`, MySQL's
//! `DECIMAL`, and Diesel types them so). Written as expression types with a static query
//! id, so that queries using them are prepared once per connection and reused, like any
//! other Diesel query (raw `sql_query`/`sql` text never is).

use diesel::backend::Backend;
use diesel::expression::{
    is_aggregate, AppearsOnTable, Expression, SelectableExpression, ValidGrouping,
};
use diesel::mysql::Mysql;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::BigInt;
use diesel::sqlite::Sqlite;
use diesel::QueryResult;

/// `COUNT(*) OVER ()`: how many rows the query matches, computed before any `LIMIT`.
#[derive(Debug, Clone, Copy, QueryId)]
pub struct CountOver;

/// `CAST(SUM(expr) OVER () AS BIGINT)`: the sum over every row the query matches,
/// computed before any `LIMIT`. The cast gives one type on every backend (PostgreSQL's
/// `SUM(bigint)` is `NUMERIC`, MySQL's `DECIMAL`); MySQL spells it `AS SIGNED`, so the
/// fragment is written per backend, and the MultiConnection's backend dispatches to
/// the connection's.
#[derive(Debug, Clone, Copy, QueryId)]
pub struct SumOver<E>(pub E);

impl Expression for CountOver {
    type SqlType = BigInt;
}

impl<E: Expression<SqlType = BigInt>> Expression for SumOver<E> {
    type SqlType = BigInt;
}

impl<DB: Backend> QueryFragment<DB> for CountOver {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("COUNT(*) OVER ()");
        Ok(())
    }
}

/// `CAST(SUM(expr) AS BIGINT)`: an aggregate, over a group or the whole query, of a
/// `BIGINT` column; `NULL` over no rows. The cast fails where the sum does not fit, as
/// the column's own arithmetic would.
#[derive(Debug, Clone, Copy, QueryId)]
pub struct SumBigInt<E>(pub E);

impl<E: Expression<SqlType = BigInt>> Expression for SumBigInt<E> {
    type SqlType = diesel::sql_types::Nullable<BigInt>;
}

type AnyBackend = <crate::db::AnyConnection as diesel::Connection>::Backend;

/// `CAST(SUM(expr)[ OVER ()] AS <as_type>)`.
fn cast_sum<'b, DB: Backend, E: QueryFragment<DB>>(
    expr: &'b E,
    mut out: AstPass<'_, 'b, DB>,
    window: &str,
    as_type: &str,
) -> QueryResult<()> {
    out.push_sql("CAST(SUM(");
    expr.walk_ast(out.reborrow())?;
    out.push_sql(")");
    out.push_sql(window);
    out.push_sql(" AS ");
    out.push_sql(as_type);
    out.push_sql(")");
    Ok(())
}

/// The fragment of a sum for each backend (MySQL spells the cast `AS SIGNED`), and for
/// the MultiConnection's backend, which dispatches to the connection's.
macro_rules! cast_sum_fragments {
    ($sum:ident, $window:expr) => {
        impl<E> QueryFragment<AnyBackend> for $sum<E>
        where
            Self: QueryFragment<Pg> + QueryFragment<Sqlite> + QueryFragment<Mysql>,
        {
            fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, AnyBackend>) -> QueryResult<()> {
                AnyBackend::walk_variant_ast(self, out)
            }
        }

        impl<E: QueryFragment<Pg>> QueryFragment<Pg> for $sum<E> {
            fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
                cast_sum(&self.0, out, $window, "BIGINT")
            }
        }

        impl<E: QueryFragment<Sqlite>> QueryFragment<Sqlite> for $sum<E> {
            fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
                cast_sum(&self.0, out, $window, "BIGINT")
            }
        }

        impl<E: QueryFragment<Mysql>> QueryFragment<Mysql> for $sum<E> {
            fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
                cast_sum(&self.0, out, $window, "SIGNED")
            }
        }
    };
}

cast_sum_fragments!(SumOver, " OVER ()");
cast_sum_fragments!(SumBigInt, "");

// A window aggregate is evaluated per row, so it mixes with plain columns without a
// GROUP BY: to Diesel it is not an aggregate.
impl ValidGrouping<()> for CountOver {
    type IsAggregate = is_aggregate::No;
}

impl<E> ValidGrouping<()> for SumOver<E> {
    type IsAggregate = is_aggregate::No;
}

impl<QS> AppearsOnTable<QS> for CountOver {}
impl<QS> SelectableExpression<QS> for CountOver {}
impl<QS, E: AppearsOnTable<QS> + Expression<SqlType = BigInt>> AppearsOnTable<QS> for SumOver<E> {}
impl<QS, E: SelectableExpression<QS> + Expression<SqlType = BigInt>> SelectableExpression<QS>
    for SumOver<E>
{
}

impl<E, GroupBy> ValidGrouping<GroupBy> for SumBigInt<E> {
    type IsAggregate = is_aggregate::Yes;
}

impl<QS, E: AppearsOnTable<QS> + Expression<SqlType = BigInt>> AppearsOnTable<QS> for SumBigInt<E> {}
impl<QS, E: SelectableExpression<QS> + Expression<SqlType = BigInt>> SelectableExpression<QS>
    for SumBigInt<E>
{
}
