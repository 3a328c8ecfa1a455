//! `/demo`: the public demo's rooms and endpoints, with the codes a visitor
//! connects with, the throwaway rooms the visitor made, and invite links to
//! those. The data comes from the server through server functions calling
//! the same services as the REST API.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

/// An endpoint of a demo room, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoEndpoint {
    /// The `name` in the endpoint's meta.
    pub name: String,
    /// `read`, `read_and_write` or `moderate`.
    pub permission: String,
    /// The code to connect with.
    pub code: String,
}

/// A demo room with its endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoRoom {
    /// The room's name.
    pub name: String,
    /// Connections open in it right now.
    pub online: u64,
    /// Its endpoints, oldest first.
    pub endpoints: Vec<DemoEndpoint>,
    /// Whether it is a throwaway room this visitor made (who may invite
    /// others to it).
    pub mine: bool,
}

/// What the server provides to the demo's server functions: the service and
/// the demo app (absent when `demo.enabled` is off).
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct DemoContext {
    /// The service the REST API uses too.
    pub service: comms_core::service::Service,
    /// The demo app.
    pub app: comms_core::store::AppRecord,
    /// Makes visitors' throwaway rooms within bounds.
    pub throwaways: std::sync::Arc<comms_core::demo::Throwaways>,
}

/// A visitor's throwaway room: its name and the codes of its two endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrowawayRoom {
    /// The room's name.
    pub room: String,
    /// Code of the `read_and_write` endpoint.
    pub writer: String,
    /// Code of the `read` endpoint.
    pub reader: String,
}

/// An invite to a throwaway room: a code for one connection, for a while.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// The code to connect with.
    pub code: String,
    /// When it stops working (RFC 3339).
    pub expires_at: String,
}

/// The throwaway rooms this visitor made, from their cookie.
#[cfg(feature = "ssr")]
async fn visitor_rooms() -> Vec<String> {
    let headers = leptos_axum::extract::<http::HeaderMap>().await.unwrap_or_default();
    let cookies = headers.get_all(http::header::COOKIE).iter().filter_map(|value| value.to_str().ok());
    cookies.flat_map(comms_core::demo::visitor_rooms).collect()
}

/// Makes a throwaway room for the visitor, and adds it to the rooms their
/// cookie names (only they see it listed).
#[server(prefix = "/demo/fn", endpoint = "create_throwaway_room")]
pub async fn create_throwaway_room() -> Result<ThrowawayRoom, ServerFnError> {
    let demo = use_context::<DemoContext>().ok_or_else(|| ServerFnError::new("the demo is off on this server"))?;
    match demo.throwaways.create(&demo.service, &demo.app).await {
        Ok(made) => {
            let mut rooms = visitor_rooms().await;
            rooms.push(made.room.clone());
            let cookie = comms_core::demo::visitor_cookie(&rooms, demo.throwaways.lifetime());
            if let (Some(response), Ok(cookie)) =
                (use_context::<leptos_axum::ResponseOptions>(), http::HeaderValue::from_str(&cookie))
            {
                response.append_header(http::header::SET_COOKIE, cookie);
            }
            Ok(ThrowawayRoom { room: made.room, writer: made.writer, reader: made.reader })
        }
        Err(comms_core::error::ServiceError::RateLimited { .. }) => {
            Err(ServerFnError::new("many rooms were made just now: try again in a minute"))
        }
        Err(err) => {
            leptos::logging::error!("demo: {err}");
            Err(ServerFnError::new("the demo is unavailable right now"))
        }
    }
}

/// Mints an invite to the throwaway room `room`, for the visitor who made
/// it (their cookie names it): a `Guest` child of the room's writer that
/// works once, within ten minutes (see [`comms_core::demo::Throwaways::invite`]).
#[server(prefix = "/demo/fn", endpoint = "create_invite")]
pub async fn create_invite(
    /// The throwaway room's name.
    room: String,
) -> Result<Invite, ServerFnError> {
    use comms_core::error::ServiceError;
    let demo = use_context::<DemoContext>().ok_or_else(|| ServerFnError::new("the demo is off on this server"))?;
    let not_yours = || ServerFnError::new("only the visitor who made a throwaway room may invite to it");
    if !visitor_rooms().await.contains(&room) {
        return Err(not_yours());
    }
    let name = comms_core::names::RoomName::parse(&room).map_err(|_| not_yours())?;
    match demo.throwaways.invite(&demo.service, &demo.app, &name).await {
        Ok(invite) => Ok(Invite {
            code: invite.code,
            expires_at: invite.expires_at.map(comms_core::time::format_ms).unwrap_or_default(),
        }),
        Err(ServiceError::RateLimited { .. }) => {
            Err(ServerFnError::new("many invites were made for this room just now: try again in a minute"))
        }
        Err(err @ (ServiceError::NotFound(_) | ServiceError::QuotaExceeded(_))) => Err(ServerFnError::new(err)),
        Err(err) => {
            leptos::logging::error!("demo: {err}");
            Err(ServerFnError::new("the demo is unavailable right now"))
        }
    }
}

/// The demo's rooms and endpoints, with the throwaway rooms this visitor
/// made (and no one else's).
#[server(prefix = "/demo/fn", endpoint = "demo_rooms")]
pub async fn demo_rooms() -> Result<Vec<DemoRoom>, ServerFnError> {
    let demo = use_context::<DemoContext>().ok_or_else(|| ServerFnError::new("the demo is off on this server"))?;
    let unavailable = |err: comms_core::error::ServiceError| {
        leptos::logging::error!("demo: {err}");
        ServerFnError::new("the demo is unavailable right now")
    };
    let visitors = visitor_rooms().await;
    let mut rooms = Vec::new();
    for room in demo.service.list_rooms(&demo.app).await.map_err(unavailable)? {
        let throwaway = room.name.starts_with(comms_core::demo::THROWAWAY_PREFIX);
        if throwaway && !visitors.contains(&room.name) {
            continue;
        }
        let name = comms_core::names::RoomName::parse(&room.name).map_err(|err| unavailable(err.into()))?;
        let endpoints = demo.service.list_endpoints(&demo.app, &name).await.map_err(unavailable)?;
        let endpoints = endpoints
            .into_iter()
            .map(|endpoint| DemoEndpoint {
                name: name_in(&endpoint.meta),
                permission: endpoint.permission.as_str().to_owned(),
                code: endpoint.code,
            })
            .collect();
        rooms.push(DemoRoom { name: room.name, online: room.online, endpoints, mine: throwaway });
    }
    Ok(rooms)
}

/// The `name` of a meta object, or a placeholder.
#[cfg(feature = "ssr")]
fn name_in(meta: &str) -> String {
    #[derive(Deserialize)]
    struct Meta {
        name: Option<String>,
    }
    serde_json::from_str::<Meta>(meta).ok().and_then(|meta| meta.name).unwrap_or_else(|| "(no name)".to_owned())
}

/// The demo page.
#[component]
pub fn Demo() -> impl IntoView {
    let rooms = Resource::new(|| (), |()| demo_rooms());
    view! {
        <Title text="Demo — comms" />
        <h1>"Live demo"</h1>
        <p>
            "These rooms belong to the public demo app. Each endpoint has a permission and a name in its meta, "
            "which the server stamps on every message sent through it. Connect to "
            <code>"/ws/endpoint/{code}/"</code> " with any of these codes."
        </p>
        <Throwaway />
        <Suspense fallback=|| view! { <p>"Loading the demo…"</p> }>
            {move || {
                rooms
                    .get()
                    .map(|result| match result {
                        Ok(rooms) => rooms.into_iter().map(|room| view! { <RoomCard room /> }).collect_view().into_any(),
                        Err(err) => view! { <p role="alert">{err.to_string()}</p> }.into_any(),
                    })
            }}
        </Suspense>
    }
}

#[component]
fn RoomCard(room: DemoRoom) -> impl IntoView {
    let invite = room.mine.then(|| view! { <InviteButton room=room.name.clone() /> });
    view! {
        <section class="demo-room" aria-label=format!("room {}", room.name)>
            <h2>{room.name.clone()}</h2>
            <p>{format!("{} online", room.online)}</p>
            {invite}
            <table>
                <thead>
                    <tr>
                        <th>"name"</th>
                        <th>"permission"</th>
                        <th>"code"</th>
                        <th>"chat"</th>
                    </tr>
                </thead>
                <tbody>
                    {room
                        .endpoints
                        .into_iter()
                        .map(|endpoint| {
                            view! {
                                <tr>
                                    <td>{endpoint.name.clone()}</td>
                                    <td>{endpoint.permission}</td>
                                    <td>
                                        <code>{endpoint.code.clone()}</code>
                                    </td>
                                    <td>
                                        <a href=format!("/demo/chat/{}", endpoint.code)>
                                            {format!("Chat as {}", endpoint.name)}
                                        </a>
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </section>
    }
}

/// The button that makes a throwaway room, and its result.
#[component]
fn Throwaway() -> impl IntoView {
    let make = Action::new(|(): &()| create_throwaway_room());
    view! {
        <section class="throwaway" aria-label="throwaway room">
            <h2>"Your own room"</h2>
            <p>"Make a throwaway room with a writer and a reader endpoint, then open both in two tabs."</p>
            <button on:click=move |_| {
                make.dispatch(());
            }>"Make a throwaway room"</button>
            {move || {
                make.value()
                    .get()
                    .map(|result| match result {
                        Ok(room) => {
                            view! {
                                <p role="status">
                                    {format!("Room {} is yours for a while: ", room.room)}
                                    <a href=format!("/demo/chat/{}", room.writer) target="_blank">
                                        "open the writer"
                                    </a>
                                    " and "
                                    <a href=format!("/demo/chat/{}", room.reader) target="_blank">
                                        "open the reader"
                                    </a>
                                    "."
                                </p>
                                <InviteButton room=room.room />
                            }
                                .into_any()
                        }
                        Err(err) => view! { <p role="alert">{err.to_string()}</p> }.into_any(),
                    })
            }}
        </section>
    }
}

/// The button that mints an invite link to a throwaway room the visitor
/// made, and the link.
#[component]
fn InviteButton(room: String) -> impl IntoView {
    let make = Action::new(move |(): &()| create_invite(room.clone()));
    view! {
        <p>
            <button on:click=move |_| {
                make.dispatch(());
            }>"Make an invite link"</button>
            " for one guest: it works once, for ten minutes."
        </p>
        {move || {
            make.value()
                .get()
                .map(|result| match result {
                    Ok(invite) => {
                        let link = shareable(format!("/demo/chat/{}", invite.code));
                        // `2026-12-31T12:00:00.000Z` → `12:00`.
                        let until = invite.expires_at.get(11..16).unwrap_or_default().to_owned();
                        view! {
                            <p role="status" class="invite">
                                {format!("Send this link to your guest (until {until} UTC): ")}
                                <a href=link.clone()>{link.clone()}</a>
                            </p>
                        }
                            .into_any()
                    }
                    Err(err) => view! { <p role="alert">{err.to_string()}</p> }.into_any(),
                })
        }}
    }
}

/// `path` as a full URL of this site, to send to someone (the path alone
/// where there is no browser window).
fn shareable(path: String) -> String {
    #[cfg(feature = "hydrate")]
    if let Ok(origin) = window().location().origin() {
        return format!("{origin}{path}");
    }
    path
}
