//! The HTTP surface: [`router`] lists the routes in the order of docs/CARDPROC-API.md,
//! [`handlers`] are thin (extract → one `Cardproc` call → response), [`auth`] turns Wallee MAC
//! headers into an authenticated [`crate::service::ApiUser`].

pub mod auth;
pub mod handlers;
pub mod router;
