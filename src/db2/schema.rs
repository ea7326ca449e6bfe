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
