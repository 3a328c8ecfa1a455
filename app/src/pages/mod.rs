//! One module per page of the site.

pub mod admin;
pub mod chat;
pub mod demo;
pub mod docs;
pub mod landing;
pub mod not_found;
pub mod portal;
