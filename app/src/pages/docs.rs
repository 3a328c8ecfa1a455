//! `/docs` and `/docs/{page}`: the documentation, rendered to HTML at build
//! time from `docs/*.md` and, for the REST reference, from the checked-in
//! OpenAPI document (see `app/build.rs`).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::pages::not_found::NotFound;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/docs.rs"));
}

/// The page `/docs` shows.
const FIRST_PAGE: &str = "quickstart";

/// A documentation page, with the menu of all of them.
#[component]
pub fn Docs() -> impl IntoView {
    let params = use_params_map();
    let slug = move || params.read().get("page").unwrap_or_else(|| FIRST_PAGE.to_owned());
    move || {
        let slug = slug();
        match generated::PAGES.iter().find(|(page, _, _)| *page == slug) {
            Some((_, title, html)) => view! {
                <Title text=format!("{title} — comms docs") />
                <div class="docs">
                    <Menu current=slug.clone() />
                    <article inner_html=*html></article>
                </div>
            }
            .into_any(),
            None => view! { <NotFound /> }.into_any(),
        }
    }
}

/// Links to every page; the current one is marked for screen readers too.
#[component]
fn Menu(current: String) -> impl IntoView {
    view! {
        <nav class="docs-menu" aria-label="Documentation">
            <ul>
                {generated::PAGES
                    .iter()
                    .map(|(slug, title, _)| {
                        let here = *slug == current;
                        view! {
                            <li>
                                <a href=format!("/docs/{slug}") aria-current=here.then_some("page")>
                                    {*title}
                                </a>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </nav>
    }
}
