//! The comms site: landing page, docs and demo as Leptos components. The
//! server renders them (feature `ssr`) and the browser hydrates them
//! (feature `hydrate`, through the `frontend` crate).
//!
//! # Layout
//!
//! - this module: the HTML shell and the router.
//! - [`pages`]: one module per page.

#![warn(missing_docs)]

pub mod pages;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, Meta, MetaTags, Stylesheet};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::pages::admin::Admin;
use crate::pages::chat::Chat;
use crate::pages::demo::Demo;
use crate::pages::docs::Docs;
use crate::pages::landing::Landing;
use crate::pages::not_found::NotFound;
use crate::pages::portal::app_page::AppPage;
use crate::pages::portal::Portal;

/// The HTML document every page is rendered into.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The site: every page and the 404 page.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/comms.css" />
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg" />
        <Meta name="description" content="comms: a self-hostable real-time communication server" />
        <Router>
            <main>
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=Landing />
                    <Route path=path!("/main") view=Landing />
                    <Route path=path!("/demo") view=Demo />
                    <Route path=path!("/demo/chat/:code") view=Chat />
                    <Route path=path!("/docs") view=Docs />
                    <Route path=path!("/docs/:page") view=Docs />
                    <Route path=path!("/portal") view=Portal />
                    <Route path=path!("/portal/apps/:name") view=AppPage />
                    <Route path=path!("/admin") view=Admin />
                </Routes>
            </main>
        </Router>
    }
}
