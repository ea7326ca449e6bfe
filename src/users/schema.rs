// @generated automatically by Diesel CLI.

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
        created_at -> Timestamp,
    }
}
