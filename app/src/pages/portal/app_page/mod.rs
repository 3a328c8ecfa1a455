//! `/portal/apps/{name}`: one of the developer's apps. Its status, its key
//! (issued once approved, shown once, rotated or revoked here), the browser
//! origins it allows, its rooms with their endpoints (each with its live
//! connections, messages sent and limits, and a form to change it),
//! online counts, members (in presence rooms) and latest messages (each
//! of which can be redacted), its webhooks with their recent deliveries
//! ([`webhooks`]); all refreshed after every action and on request, not
//! pushed: a refresh while typing would wipe the forms. And deleting the
//! app. Above them its [`usage`]: charts, quotas, and its connection count,
//! which is pushed.

mod usage;
mod webhooks;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use self::usage::UsageSection;
use self::webhooks::WebhooksSection;
use super::api::{
    app_overview, portal_session, CreateEndpoint, CreateRoom, CreateWebhook, DeleteApp, DeleteEndpoint, DeleteRoom,
    DeleteWebhook, IssueKey, RedactMessage, Redeliver, RevokeKeys, SetAllowedOrigins, UpdateEndpoint,
};
use super::forms::{FormToken, Outcome};
use super::views::{AppDetails, EndpointRow, MemberRow, MessageRow, RoomPanel};

/// Every action of the page, so one refetch follows any of them.
#[derive(Clone, Copy)]
struct Actions {
    issue_key: ServerAction<IssueKey>,
    revoke_keys: ServerAction<RevokeKeys>,
    set_origins: ServerAction<SetAllowedOrigins>,
    delete_app: ServerAction<DeleteApp>,
    create_room: ServerAction<CreateRoom>,
    delete_room: ServerAction<DeleteRoom>,
    create_endpoint: ServerAction<CreateEndpoint>,
    update_endpoint: ServerAction<UpdateEndpoint>,
    delete_endpoint: ServerAction<DeleteEndpoint>,
    redact_message: ServerAction<RedactMessage>,
    create_webhook: ServerAction<CreateWebhook>,
    delete_webhook: ServerAction<DeleteWebhook>,
    redeliver: ServerAction<Redeliver>,
    /// Changes when an endpoint's edit succeeds: after a mistake the page
    /// is not refreshed, so the form stays open as typed.
    saved_edits: Memo<usize>,
}

impl Actions {
    fn new() -> Self {
        let update_endpoint = ServerAction::<UpdateEndpoint>::new();
        let saved_edits = Memo::new(move |last: Option<&usize>| {
            if update_endpoint.value().with(|value| matches!(value, Some(Ok(())))) {
                update_endpoint.version().get()
            } else {
                last.copied().unwrap_or(0)
            }
        });
        Self {
            issue_key: ServerAction::new(),
            revoke_keys: ServerAction::new(),
            set_origins: ServerAction::new(),
            delete_app: ServerAction::new(),
            create_room: ServerAction::new(),
            delete_room: ServerAction::new(),
            create_endpoint: ServerAction::new(),
            update_endpoint,
            delete_endpoint: ServerAction::new(),
            redact_message: ServerAction::new(),
            create_webhook: ServerAction::new(),
            delete_webhook: ServerAction::new(),
            redeliver: ServerAction::new(),
            saved_edits,
        }
    }

    /// Changes whenever any action completes (an endpoint's edit: when it
    /// succeeds).
    fn versions(self) -> [usize; 13] {
        [
            self.issue_key.version().get(),
            self.revoke_keys.version().get(),
            self.set_origins.version().get(),
            self.delete_app.version().get(),
            self.create_room.version().get(),
            self.delete_room.version().get(),
            self.create_endpoint.version().get(),
            self.saved_edits.get(),
            self.delete_endpoint.version().get(),
            self.redact_message.version().get(),
            self.create_webhook.version().get(),
            self.delete_webhook.version().get(),
            self.redeliver.version().get(),
        ]
    }
}

/// The page of one app.
#[component]
pub fn AppPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let actions = Actions::new();
    let session = Resource::new(|| (), |()| portal_session());
    let overview = Resource::new(move || (name(), actions.versions()), |(name, _)| app_overview(name));
    view! {
        <Title text=move || format!("{} — comms portal", name()) />
        <p><a href="/portal">"← Your apps"</a></p>
        <h1>{name}</h1>
        {move || view! { <UsageSection app=name() /> }}
        <p>
            "Online counts, messages sent, members, messages and webhook deliveries are as of loading the page. "
            <button type="button" on:click=move |_| overview.refetch()>"Refresh"</button>
        </p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                let csrf = match session.get()? {
                    Ok(session) if session.email.is_some() => session.csrf,
                    Ok(_) => return Some(view! { <p role="alert">"Sign in on " <a href="/portal">"the portal"</a> " first."</p> }.into_any()),
                    Err(err) => return Some(view! { <p role="alert" class="error">{err.to_string()}</p> }.into_any()),
                };
                overview
                    .get()
                    .map(|result| match result {
                        Ok(overview) => view! { <Overview overview csrf actions /> }.into_any(),
                        Err(err) => view! { <p role="alert" class="error">{err.to_string()}</p> }.into_any(),
                    })
            }}
        </Suspense>
    }
}

#[component]
fn Overview(overview: AppDetails, csrf: String, actions: Actions) -> impl IntoView {
    let AppDetails { app, rooms, webhooks } = overview;
    let approved = app.status == "approved";
    let name = app.name.clone();
    view! {
        <section aria-labelledby="status-heading">
            <h2 id="status-heading">"Status: " {app.status.clone()}</h2>
            {match app.status.as_str() {
                "pending" => "An admin will review the app; its key can be issued once it is approved.",
                "rejected" => "An admin rejected this app.",
                "suspended" => "An admin suspended this app: its key and endpoints do not work.",
                _ => "The app is approved: its key works on the REST API.",
            }}
            <dl>
                <dt>"Intended use"</dt>
                <dd>{app.intended_use.clone()}</dd>
                <dt>"Description"</dt>
                <dd>{app.description.clone()}</dd>
                <dt>"Website"</dt>
                <dd>{app.website.clone()}</dd>
            </dl>
        </section>
        <KeySection app=name.clone() csrf=csrf.clone() active_keys=app.active_keys approved actions />
        <OriginsSection app=name.clone() csrf=csrf.clone() origins=app.allowed_origins.clone() actions />
        {approved.then(|| view! { <RoomsSection app=name.clone() csrf=csrf.clone() rooms actions /> })}
        {approved.then(|| view! { <WebhooksSection app=name.clone() csrf=csrf.clone() webhooks actions /> })}
        <section aria-labelledby="delete-heading" class="card danger">
            <h2 id="delete-heading">"Delete the app"</h2>
            <ActionForm action=actions.delete_app>
                <FormToken csrf />
                <input type="hidden" name="app" value=name />
                <label>
                    <input type="checkbox" required />
                    " I understand that its rooms, endpoints, history and keys go too"
                </label>
                <button type="submit">"Delete app"</button>
            </ActionForm>
            <Outcome action=actions.delete_app done="Deleted." />
        </section>
    }
    .into_any()
}

#[component]
fn KeySection(app: String, csrf: String, active_keys: u64, approved: bool, actions: Actions) -> impl IntoView {
    let issued = move || match actions.issue_key.value().get() {
        Some(Ok(key)) => Some(
            view! {
                <div role="status" class="new-key">
                    <p>"Your new API key. Copy it now: it is not shown again."</p>
                    <label>"New API key" <input readonly value=key.clone() class="secret" /></label>
                    <CopyButton text=key label="Copy key" />
                </div>
            }
            .into_any(),
        ),
        Some(Err(err)) => Some(view! { <p role="alert" class="error">{err.to_string()}</p> }.into_any()),
        None => None,
    };
    let (issue_csrf, issue_app) = (csrf.clone(), app.clone());
    let issue_form = approved.then(move || {
        view! {
            <ActionForm action=actions.issue_key attr:class="inline">
                <FormToken csrf=issue_csrf />
                <input type="hidden" name="app" value=issue_app />
                {(active_keys > 0).then(|| view! {
                    <label>
                        <input type="checkbox" name="revoke_endpoints" value="true" />
                        " and delete the endpoints made with the old key (it leaked)"
                    </label>
                })}
                <button type="submit">{if active_keys == 0 { "Issue a key" } else { "Rotate key" }}</button>
            </ActionForm>
        }
    });
    view! {
        <section aria-labelledby="key-heading" class="card">
            <h2 id="key-heading">"API key"</h2>
            <p>
                {match active_keys {
                    0 => "The app has no working key.".to_owned(),
                    1 => "The app has a working key.".to_owned(),
                    n => format!("The app has {n} working keys."),
                }}
                " Send it as " <code>"X-API-Key"</code> " to " <code>"/api/v1/…"</code> "."
            </p>
            {issue_form}
            <ActionForm action=actions.revoke_keys attr:class="inline">
                <FormToken csrf />
                <input type="hidden" name="app" value=app />
                <button type="submit">"Revoke keys"</button>
            </ActionForm>
            {issued}
            <Outcome action=actions.revoke_keys done="Every key of the app is revoked." />
        </section>
    }
    .into_any()
}

/// The browser origins the app's pages may call the API and open sockets
/// from; an empty list allows any.
#[component]
fn OriginsSection(app: String, csrf: String, origins: Vec<String>, actions: Actions) -> impl IntoView {
    let current = if origins.is_empty() {
        "Any origin may use the app's key and endpoints (the default).".to_owned()
    } else {
        format!("Only pages from these origins may use the app's key and endpoints: {}.", origins.join(", "))
    };
    view! {
        <section aria-labelledby="origins-heading" class="card">
            <h2 id="origins-heading">"Allowed origins"</h2>
            <p>{current}</p>
            <p>
                "Browsers send their page's origin with every request and WebSocket; requests without one "
                "(servers, scripts) are not affected. Write one origin per line, such as "
                <code>"https://example.com"</code> ", " <code>"https://*.example.com"</code> " or "
                <code>"http://localhost:3000"</code> "; leave it empty to allow any."
            </p>
            <ActionForm action=actions.set_origins>
                <FormToken csrf />
                <input type="hidden" name="app" value=app />
                <label>
                    "Origins"
                    <textarea name="origins" rows="3" spellcheck="false">{origins.join("\n")}</textarea>
                </label>
                <button type="submit">"Save origins"</button>
            </ActionForm>
            <Outcome action=actions.set_origins done="Saved." />
        </section>
    }
    .into_any()
}

#[component]
fn RoomsSection(app: String, csrf: String, rooms: Vec<RoomPanel>, actions: Actions) -> impl IntoView {
    let cards = rooms
        .into_iter()
        .map(|room| view! { <RoomCard app=app.clone() csrf=csrf.clone() room actions /> })
        .collect_view();
    view! {
        <section aria-labelledby="rooms-heading">
            <h2 id="rooms-heading">"Rooms"</h2>
            <ActionForm action=actions.create_room attr:class="card">
                <FormToken csrf />
                <input type="hidden" name="app" value=app />
                <label>"New room name" <input name="room" required maxlength="64" /></label>
                <label>
                    <input type="checkbox" name="presence" value="true" />
                    " Presence: track who is online (members, join and leave)"
                </label>
                <button type="submit">"Create room"</button>
            </ActionForm>
            <Outcome action=actions.create_room />
            <Outcome action=actions.delete_room />
            <Outcome action=actions.create_endpoint />
            <Outcome action=actions.update_endpoint />
            <Outcome action=actions.delete_endpoint />
            <Outcome action=actions.redact_message />
            {cards}
        </section>
    }
    .into_any()
}

#[component]
fn RoomCard(app: String, csrf: String, room: RoomPanel, actions: Actions) -> impl IntoView {
    let RoomPanel { name, online, members, endpoints, latest } = room;
    let lines = endpoints
        .into_iter()
        .map(|endpoint| view! { <EndpointLine app=app.clone() room=name.clone() csrf=csrf.clone() endpoint actions /> })
        .collect_view();
    let (add_csrf, add_app, add_room) = (csrf.clone(), app.clone(), name.clone());
    let (latest_csrf, latest_app, latest_room) = (csrf.clone(), app.clone(), name.clone());
    let heading = name.clone();
    let label = format!("room {name}");
    let delete_label = format!("Delete room {name}");
    view! {
        <section class="room card" aria-label=label>
            <h3>{heading} " " <small>{format!("{online} online")}</small></h3>
            {members.map(|members| view! { <Members members /> })}
            <table>
                <thead>
                    <tr>
                        <th>"permission"</th>
                        <th>"meta"</th>
                        <th>"use"</th>
                        <th>"limits"</th>
                        <th>"WebSocket URL"</th>
                        <th>"actions"</th>
                    </tr>
                </thead>
                <tbody>{lines}</tbody>
            </table>
            <ActionForm action=actions.create_endpoint attr:class="inline">
                <FormToken csrf=add_csrf />
                <input type="hidden" name="app" value=add_app />
                <input type="hidden" name="room" value=add_room />
                <label>
                    "Permission "
                    <select name="permission">
                        <PermissionOptions selected="read_and_write" />
                    </select>
                </label>
                <label>"Meta (JSON object) " <input name="meta" placeholder="{\"name\": \"Ann\"}" /></label>
                <button type="submit">"Add endpoint"</button>
            </ActionForm>
            <Latest app=latest_app room=latest_room csrf=latest_csrf messages=latest actions />
            <ActionForm action=actions.delete_room attr:class="inline">
                <FormToken csrf />
                <input type="hidden" name="app" value=app />
                <input type="hidden" name="room" value=name />
                <button type="submit">{delete_label}</button>
            </ActionForm>
        </section>
    }
    .into_any()
}

#[component]
fn EndpointLine(app: String, room: String, csrf: String, endpoint: EndpointRow, actions: Actions) -> impl IntoView {
    let url = endpoint.ws_url.clone();
    let chat = format!("/demo/chat/{}", endpoint.code);
    let editing = RwSignal::new(false);
    let sent = match (endpoint.messages_sent, endpoint.max_messages) {
        (sent, Some(budget)) => format!("{sent} of {budget} messages sent"),
        (1, None) => "1 message sent".to_owned(),
        (sent, None) => format!("{sent} messages sent"),
    };
    let mut limits = Vec::new();
    if let Some(at) = &endpoint.expires_at {
        limits.push(format!("expires {at}"));
    }
    if endpoint.single_use {
        limits.push("single use".to_owned());
    }
    if let Some(parent) = &endpoint.parent {
        limits.push(format!("minted by {parent}"));
    }
    let limits = if limits.is_empty() { "none".to_owned() } else { limits.join("; ") };
    let (edit_csrf, edit_app, edit_room, edit) = (csrf.clone(), app.clone(), room.clone(), endpoint.clone());
    let form = move || {
        editing.get().then(|| {
            view! {
                <EditEndpoint
                    app=edit_app.clone()
                    room=edit_room.clone()
                    csrf=edit_csrf.clone()
                    endpoint=edit.clone()
                    action=actions.update_endpoint
                />
            }
        })
    };
    view! {
        <tr>
            <td>{endpoint.permission}</td>
            <td>
                <code>{endpoint.meta}</code>
            </td>
            <td>{format!("{} online", endpoint.online)} <br /> {sent}</td>
            <td>{limits}</td>
            <td>
                <code class="url">{url}</code>
                " "
                <CopyButton text=endpoint.ws_url label="Copy URL" />
            </td>
            <td>
                <a href=chat>"Open chat"</a>
                <button type="button" aria-expanded=move || editing.get().to_string() on:click=move |_| editing.update(|open| *open = !*open)>
                    "Edit"
                </button>
                <ActionForm action=actions.delete_endpoint attr:class="inline">
                    <FormToken csrf />
                    <input type="hidden" name="app" value=app />
                    <input type="hidden" name="room" value=room />
                    <input type="hidden" name="code" value=endpoint.code />
                    <button type="submit">"Delete endpoint"</button>
                </ActionForm>
                {form}
            </td>
        </tr>
    }
    .into_any()
}

/// The form that changes an endpoint, filled in with what it is now.
#[component]
fn EditEndpoint(
    app: String,
    room: String,
    csrf: String,
    endpoint: EndpointRow,
    action: ServerAction<UpdateEndpoint>,
) -> impl IntoView {
    view! {
        <ActionForm action attr:class="edit-endpoint">
            <FormToken csrf />
            <input type="hidden" name="app" value=app />
            <input type="hidden" name="room" value=room />
            <input type="hidden" name="change[code]" value=endpoint.code />
            <label>
                "Permission " <select name="change[permission]"><PermissionOptions selected=endpoint.permission /></select>
            </label>
            <label>"Meta (JSON object) " <input name="change[meta]" value=endpoint.meta /></label>
            <label>
                "Expires at (RFC 3339, empty: never) "
                <input name="change[expires_at]" value=endpoint.expires_at.unwrap_or_default() placeholder="2026-12-31T12:00:00Z" />
            </label>
            <label>
                "Max messages (empty: unlimited) "
                <input
                    name="change[max_messages]"
                    type="number"
                    min="0"
                    value=endpoint.max_messages.map(|budget| budget.to_string()).unwrap_or_default()
                />
            </label>
            <button type="submit">"Save endpoint"</button>
        </ActionForm>
    }
}

/// The options of a permission field, `selected` chosen.
#[component]
fn PermissionOptions(#[prop(into)] selected: String) -> impl IntoView {
    ["read", "read_and_write", "moderate"]
        .into_iter()
        .map(|permission| view! { <option value=permission selected=permission == selected>{permission}</option> })
        .collect_view()
}

/// Who is in a presence room: each member's name (or id) and connections.
#[component]
fn Members(members: Vec<MemberRow>) -> impl IntoView {
    if members.is_empty() {
        return view! { <p>"Presence room: no members online."</p> }.into_any();
    }
    view! {
        <h4>{format!("Members ({})", members.len())}</h4>
        <ul class="members" aria-label="Members">
            {members
                .into_iter()
                .map(|member| {
                    let connections = match member.connections {
                        0 => "leaving".to_owned(),
                        1 => "1 connection".to_owned(),
                        n => format!("{n} connections"),
                    };
                    let who = match member.name {
                        Some(name) => view! { {name} " " <code>{member.id}</code> }.into_any(),
                        None => view! { <code>{member.id}</code> }.into_any(),
                    };
                    view! { <li>{who} {format!(" ({connections})")}</li> }
                })
                .collect_view()}
        </ul>
    }
    .into_any()
}

/// The newest messages of a room, each with a button that redacts it (a
/// redacted one shows when it was removed).
#[component]
fn Latest(app: String, room: String, csrf: String, messages: Vec<MessageRow>, actions: Actions) -> impl IntoView {
    if messages.is_empty() {
        return view! { <p>"No messages yet."</p> }.into_any();
    }
    view! {
        <h4>"Latest messages"</h4>
        <ol class="latest">
            {messages
                .into_iter()
                .map(|m| {
                    let when = m.timestamp.clone();
                    let body = match m.redacted_at {
                        Some(at) => view! { <em class="redacted">{format!("removed {at}")}</em> }.into_any(),
                        None => {
                            let (csrf, app, room) = (csrf.clone(), app.clone(), room.clone());
                            view! {
                                <code>{m.message}</code>
                                <ActionForm action=actions.redact_message attr:class="inline">
                                    <FormToken csrf />
                                    <input type="hidden" name="app" value=app />
                                    <input type="hidden" name="room" value=room />
                                    <input type="hidden" name="seq" value=m.seq.to_string() />
                                    <button type="submit">"Redact"</button>
                                </ActionForm>
                            }
                                .into_any()
                        }
                    };
                    view! {
                        <li value=m.seq.to_string()>
                            <time datetime=when>{m.timestamp}</time>
                            " " {m.sender} ": " {body}
                        </li>
                    }
                })
                .collect_view()}
        </ol>
    }
    .into_any()
}

/// Copies `text` to the clipboard (in the hydrated page).
#[component]
fn CopyButton(text: String, label: &'static str) -> impl IntoView {
    let copied = RwSignal::new(false);
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let _ = window().navigator().clipboard().write_text(&text);
            copied.set(true);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &text;
    };
    view! {
        <button type="button" on:click=copy>
            {move || if copied.get() { "Copied" } else { label }}
        </button>
    }
}
