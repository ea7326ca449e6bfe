// @generated automatically by Diesel CLI.

diesel::table! {
    orders (id) {
        id -> BigInt,
        user_id -> BigInt,
        item -> Text,
        quantity -> Integer,
        amount_cents -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    user_order_totals (user_id) {
        user_id -> BigInt,
        order_count -> BigInt,
        total_cents -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(orders, user_order_totals,);
