//! Renders the documentation pages at build time. Sources, so nothing is
//! written twice: sections of README.md (quickstart, SDKs, portal, command
//! line and operations), the Markdown files of `docs/` (the protocol
//! reference among them), and, for the REST reference, the checked-in
//! OpenAPI document (which a server test keeps equal to what the handlers
//! describe). The server ships the HTML (the wasm only the menu: it asks the
//! server for a page it renders itself); no Markdown or JSON parser ends up
//! in either.

use std::fmt::Write as _;
use std::path::Path;

use std::collections::HashMap;

use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag, TagEnd};
use serde_json::Value;

/// Where a page comes from.
enum Source {
    /// `##` sections of README.md, by heading.
    Readme(&'static [&'static str]),
    /// A Markdown file of `docs/`.
    Doc(&'static str),
    /// Another Markdown file of the repository (an SDK's README).
    Repo(&'static str),
    /// The REST reference, from `docs/openapi.json`.
    OpenApi,
}

/// `(slug, title, source)` of every page, in the order of the menu.
const PAGES: &[(&str, &str, Source)] = &[
    ("quickstart", "Quickstart", Source::Readme(&["Quickstart"])),
    ("concepts", "Concepts", Source::Doc("concepts.md")),
    ("protocol", "Protocol reference", Source::Doc("protocol.md")),
    ("capabilities", "Capabilities", Source::Doc("capabilities.md")),
    ("webhooks", "Webhooks", Source::Doc("webhooks.md")),
    ("usage", "Usage and limits", Source::Doc("usage.md")),
    ("rest", "REST API reference", Source::OpenApi),
    ("sdks", "SDKs", Source::Readme(&["SDKs"])),
    ("sdk-js", "JavaScript SDK", Source::Repo("sdk-js/README.md")),
    ("sdk-rust", "Rust SDK", Source::Repo("sdk-rust/README.md")),
    ("portal", "Developer portal and admin", Source::Readme(&["Developer portal and admin"])),
    ("configuration", "Configuration", Source::Doc("configuration.md")),
    ("operations", "Operations and command line", Source::Readme(&["Command line", "Operations"])),
    ("security", "Security and limits", Source::Doc("security.md")),
    ("decisions", "Design decisions", Source::Doc("decisions.md")),
    ("deployment", "Deployment: nginx, systemd, TLS", Source::Doc("deployment.md")),
    ("scaling", "Scaling", Source::Doc("scaling.md")),
    ("performance", "Performance", Source::Doc("performance.md")),
];

fn main() {
    // Read when the script runs, not baked in when it is compiled: a shared
    // target folder reuses the compiled script for checkouts elsewhere.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir).join("..");
    let read = |path: &Path| {
        println!("cargo:rerun-if-changed={}", path.display());
        std::fs::read_to_string(path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()))
    };
    let readme = read(&root.join("README.md"));
    // The menu goes into the wasm; the pages' HTML only into the server,
    // which renders it and hands it to the browser on request.
    let mut menu = String::from(
        "/// `(slug, title)` of every documentation page, in the order of the menu.\n\
         pub const PAGES: &[(&str, &str)] = &[\n",
    );
    let mut pages =
        String::from("/// The HTML of every page, in the order of `PAGES`.\npub const HTML: &[&str] = &[\n");
    for (slug, title, source) in PAGES {
        let html = match source {
            Source::Readme(headings) => {
                // One section becomes the page; several keep their headings.
                let sections: Vec<String> = match headings {
                    [only] => vec![readme_section(&readme, only)],
                    several => several.iter().map(|h| format!("## {h}\n\n{}", readme_section(&readme, h))).collect(),
                };
                markdown(&site_links(&format!("# {title}\n\n{}", sections.join("\n"))))
            }
            Source::Doc(file) => markdown(&site_links(&with_includes(&read(&root.join("docs").join(file)), &root))),
            Source::Repo(file) => markdown(&site_links(&read(&root.join(file)))),
            Source::OpenApi => rest_reference(&read(&root.join("docs/openapi.json"))),
        };
        writeln!(menu, "    ({slug:?}, {title:?}),").unwrap();
        writeln!(pages, "    {html:?},").unwrap();
    }
    menu.push_str("];\n");
    pages.push_str("];\n");
    let out_dir = Path::new(&std::env::var("OUT_DIR").unwrap()).to_owned();
    std::fs::write(out_dir.join("docs_menu.rs"), menu).unwrap();
    std::fs::write(out_dir.join("docs_html.rs"), pages).unwrap();

    // The landing page's samples: the quickstart's first curl block and its
    // browser snippet, as the README (and the test that runs it) has them.
    let quickstart = readme_section(&readme, "Quickstart");
    let curl =
        fenced_blocks(&quickstart, "sh").into_iter().find(|block| block.starts_with("curl ")).expect("a curl block");
    let js = fenced_blocks(&quickstart, "js").into_iter().next().expect("a js block");
    let samples = format!("/// README's first curl block.\npub const CURL: &str = {curl:?};\n/// README's browser snippet.\npub const JS: &str = {js:?};\n");
    std::fs::write(out_dir.join("samples.rs"), samples).unwrap();
}

/// Replaces each `<!-- include: PATH -->` line with the file at `PATH`
/// (relative to the repository) as a code block, so a guide shows the very
/// files the repository ships.
fn with_includes(markdown: &str, root: &Path) -> String {
    markdown
        .lines()
        .map(|line| match line.strip_prefix("<!-- include: ").and_then(|rest| rest.strip_suffix(" -->")) {
            Some(path) => {
                let file = root.join(path);
                println!("cargo:rerun-if-changed={}", file.display());
                let text = std::fs::read_to_string(&file).unwrap_or_else(|err| panic!("including {path}: {err}"));
                let language = if path.ends_with(".toml") { "toml" } else { "" };
                format!("```{language}\n{}\n```", text.trim_end())
            }
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Points links between the repository's Markdown files (which work when
/// reading the repository) at the site's pages, keeping any `#section`.
fn site_links(markdown: &str) -> String {
    let retarget = |text: String, from: &str, slug: &str| {
        text.replace(&format!("]({from})"), &format!("](/docs/{slug})"))
            .replace(&format!("]({from}#"), &format!("](/docs/{slug}#"))
    };
    PAGES.iter().fold(markdown.to_owned(), |text, (slug, _, source)| match source {
        Source::Doc(file) => retarget(retarget(text, file, slug), &format!("docs/{file}"), slug),
        Source::Repo(file) => retarget(text, file, slug),
        _ => text,
    })
}

/// The contents of the fenced blocks of `language` in `markdown`.
fn fenced_blocks(markdown: &str, language: &str) -> Vec<String> {
    let opening = format!("```{language}\n");
    let mut blocks = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find(&opening) {
        let body = &rest[start + opening.len()..];
        let end = body.find("```").expect("a closed fence");
        blocks.push(body[..end].trim_end().to_owned());
        rest = &body[end + 3..];
    }
    blocks
}

/// The body of README's `## {heading}` section (without the heading), its
/// own subsections included.
fn readme_section(readme: &str, heading: &str) -> String {
    let marker = format!("\n## {heading}\n");
    let start = readme.find(&marker).unwrap_or_else(|| panic!("README.md has no section {heading:?}")) + marker.len();
    let body = &readme[start..];
    body[..body.find("\n## ").unwrap_or(body.len())].to_owned()
}

/// Renders Markdown, giving every heading the `id` GitHub gives it, so a
/// link such as `protocol.md#close-codes` works on the site as it does in
/// the repository.
fn markdown(text: &str) -> String {
    let mut events: Vec<Event> = Parser::new_ext(text, Options::ENABLE_TABLES).collect();
    let mut taken: HashMap<String, usize> = HashMap::new();
    let anchors: Vec<(usize, String)> = events
        .iter()
        .enumerate()
        .filter(|(_, event)| matches!(event, Event::Start(Tag::Heading { id: None, .. })))
        .map(|(start, _)| {
            let title: String = events[start + 1..]
                .iter()
                .take_while(|event| !matches!(event, Event::End(TagEnd::Heading(_))))
                .filter_map(|event| match event {
                    Event::Text(text) | Event::Code(text) => Some(text.as_ref()),
                    _ => None,
                })
                .collect();
            // Repeated titles get -1, -2 … as on GitHub.
            let base = anchor(&title);
            let seen = taken.entry(base.clone()).or_insert(0);
            let unique = if *seen == 0 { base } else { format!("{base}-{seen}") };
            *seen += 1;
            (start, unique)
        })
        .collect();
    for (start, unique) in anchors {
        if let Event::Start(Tag::Heading { id, .. }) = &mut events[start] {
            *id = Some(CowStr::from(unique));
        }
    }
    let mut html = String::new();
    html::push_html(&mut html, events.into_iter());
    html
}

/// GitHub's anchor for a heading: lowercase, spaces to hyphens, and only
/// letters, digits, `-` and `_` kept.
fn anchor(title: &str) -> String {
    title
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The name of a `$ref`, or the type of an inline schema.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("<a href=\"#schema-{name}\">{name}</a>");
    }
    match &schema["type"] {
        Value::String(kind) if kind == "array" => format!("array of {}", type_of(&schema["items"])),
        Value::String(kind) => escape(kind),
        Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "),
        _ if schema.get("oneOf").is_some() => "one of several".into(),
        _ => "any JSON".into(),
    }
}

fn rest_reference(text: &str) -> String {
    let doc: Value = serde_json::from_str(text).expect("docs/openapi.json is JSON");
    let mut html = format!(
        "<h1>REST API reference</h1><p>{}</p><p>Generated from the server's OpenAPI {} document, also served at \
         <a href=\"/api/v1/openapi.json\"><code>/api/v1/openapi.json</code></a>.</p>",
        escape(doc["info"]["description"].as_str().unwrap_or_default()),
        escape(doc["openapi"].as_str().unwrap_or_default()),
    );
    let paths = doc["paths"].as_object().expect("the document has paths");
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().into_iter().flatten() {
            let _ = write!(
                html,
                "<section class=\"operation\"><h2><code>{} {}</code></h2>",
                method.to_uppercase(),
                escape(path)
            );
            let summary = operation["summary"].as_str().unwrap_or_default();
            let description = operation["description"].as_str().unwrap_or_default();
            let _ = write!(html, "<p>{}</p>", escape(&format!("{summary} {description}").replace('\n', " ")));
            if let Some(parameters) = operation["parameters"].as_array() {
                html.push_str("<h3>Parameters</h3><ul>");
                for parameter in parameters {
                    let _ = write!(
                        html,
                        "<li><code>{}</code> ({}, {}){}</li>",
                        escape(parameter["name"].as_str().unwrap_or_default()),
                        escape(parameter["in"].as_str().unwrap_or_default()),
                        type_of(&parameter["schema"]),
                        parameter["description"].as_str().map(|d| format!(": {}", escape(d))).unwrap_or_default(),
                    );
                }
                html.push_str("</ul>");
            }
            if let Some(body) = operation["requestBody"]["content"]["application/json"]["schema"].as_object() {
                let _ = write!(html, "<h3>Body</h3><p>{}</p>", type_of(&Value::Object(body.clone())));
            }
            html.push_str("<h3>Responses</h3><ul>");
            for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                let schema = &response["content"]["application/json"]["schema"];
                let body = if schema.is_null() { String::new() } else { format!(": {}", type_of(schema)) };
                let _ = write!(
                    html,
                    "<li><code>{status}</code> {}{body}</li>",
                    escape(response["description"].as_str().unwrap_or_default())
                );
            }
            html.push_str("</ul></section>");
        }
    }
    html.push_str("<h2>Schemas</h2>");
    for (name, schema) in doc["components"]["schemas"].as_object().into_iter().flatten() {
        let _ = write!(html, "<section class=\"schema\" id=\"schema-{name}\"><h3>{name}</h3>");
        if let Some(description) = schema["description"].as_str() {
            let _ = write!(html, "<p>{}</p>", escape(description));
        }
        if let Some(values) = schema["enum"].as_array() {
            let values: Vec<String> =
                values.iter().map(|v| format!("<code>{}</code>", escape(&v.to_string()))).collect();
            let _ = write!(html, "<p>One of {}.</p>", values.join(", "));
        }
        if let Some(properties) = schema["properties"].as_object() {
            let required: Vec<&str> =
                schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            html.push_str("<table><thead><tr><th>field</th><th>type</th><th>description</th></tr></thead><tbody>");
            for (field, property) in properties {
                let optional = if required.contains(&field.as_str()) { "" } else { " (optional)" };
                let _ = write!(
                    html,
                    "<tr><td><code>{}</code>{optional}</td><td>{}</td><td>{}</td></tr>",
                    escape(field),
                    type_of(property),
                    escape(property["description"].as_str().unwrap_or_default())
                );
            }
            html.push_str("</tbody></table>");
        }
        html.push_str("</section>");
    }
    html
}
