//! The comms site: landing page, docs and demo as Leptos components. The
//! server renders them (feature `ssr`) and the browser hydrates them
//! (feature `hydrate`, through the `frontend` crate).
//!
//! # Layout
//!
//! - this module: the HTML shell and the router.
//! - [`layout`]: the header and footer around every page.
//! - [`pages`]: one module per page.

#![warn(missing_docs)]

pub mod layout;
pub mod pages;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, Link, Meta, MetaTags};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;
use leptos_router::{lazy_route, Lazy, LazyRoute};

use crate::layout::{SiteFooter, SiteHeader, Viewer};
use crate::pages::admin::Admin;
use crate::pages::chat::Chat;
use crate::pages::demo::Demo;
use crate::pages::docs::Docs;
use crate::pages::landing::Landing;
use crate::pages::not_found::NotFound;
use crate::pages::portal::app_page::AppPage;
use crate::pages::portal::mailed_links::{ConfirmPage, ResetPage};
use crate::pages::portal::Portal;

/// The response header through which a page tells the server the nonce
/// its inline scripts carry, so the Content-Security-Policy can allow
/// exactly those; the server takes it off before the response leaves.
pub const SCRIPT_NONCE_HEADER: &str = "x-comms-script-nonce";

/// The HTML document every page is rendered into. The stylesheet and the
/// scripts carry the content hashes of a release build in their names
/// (`options.hash_files`), so browsers may keep them for good.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    announce_script_nonce();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <HashedStylesheet options=options.clone() id="leptos" />
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

/// Puts the nonce Leptos gives this response's inline scripts (the
/// hydration bootstrap, streamed resources) in [`SCRIPT_NONCE_HEADER`].
#[cfg(feature = "ssr")]
fn announce_script_nonce() {
    let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    if let Ok(value) = http::HeaderValue::from_str(&nonce) {
        response.insert_header(http::HeaderName::from_static(SCRIPT_NONCE_HEADER), value);
    }
}

/// The site: every page and the 404 page, between the shared header and
/// footer.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_context(Viewer::new());
    view! {
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg" />
        <Meta name="description" content="comms: a self-hostable real-time communication server" />
        <Router>
            <SiteHeader />
            <main>
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=Landing />
                    <Route path=path!("/main") view=Landing />
                    <Route path=path!("/demo") view=Demo />
                    <Route path=path!("/demo/chat/:code") view={Lazy::<ChatRoute>::new()} />
                    <Route path=path!("/docs") view=Docs />
                    <Route path=path!("/docs/:page") view=Docs />
                    <Route path=path!("/portal") view={Lazy::<PortalRoute>::new()} />
                    <Route path=path!("/portal/apps/:name") view={Lazy::<AppRoute>::new()} />
                    <Route path=path!("/portal/confirm") view={Lazy::<ConfirmRoute>::new()} />
                    <Route path=path!("/portal/reset") view={Lazy::<ResetRoute>::new()} />
                    <Route path=path!("/admin") view={Lazy::<AdminRoute>::new()} />
                </Routes>
            </main>
            <SiteFooter />
        </Router>
    }
}

/// `/demo/chat/{code}`, loaded on demand: the WebSocket client is only for
/// visitors who open a chat.
struct ChatRoute;

#[lazy_route]
impl LazyRoute for ChatRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <Chat /> }.into_any()
    }
}

/// `/portal`, loaded on demand: visitors of the other pages never download
/// the portal's code.
struct PortalRoute;

#[lazy_route]
impl LazyRoute for PortalRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <Portal /> }.into_any()
    }
}

/// `/portal/apps/{name}`, loaded on demand.
struct AppRoute;

#[lazy_route]
impl LazyRoute for AppRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <AppPage /> }.into_any()
    }
}

/// `/portal/confirm`, loaded on demand.
struct ConfirmRoute;

#[lazy_route]
impl LazyRoute for ConfirmRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <ConfirmPage /> }.into_any()
    }
}

/// `/portal/reset`, loaded on demand.
struct ResetRoute;

#[lazy_route]
impl LazyRoute for ResetRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <ResetPage /> }.into_any()
    }
}

/// `/admin`, loaded on demand.
struct AdminRoute;

#[lazy_route]
impl LazyRoute for AdminRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <Admin /> }.into_any()
    }
}
