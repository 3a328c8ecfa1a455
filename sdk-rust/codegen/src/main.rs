//! Generates both SDKs' types and REST methods from the server's OpenAPI
//! document (`docs/openapi.json`, which a server test keeps equal to what
//! the handlers describe): `sdk-rust/src/generated.rs` ([`rust`]) and
//! `sdk-js/src/generated.ts` ([`typescript`]). `cargo run -p
//! comms-sdk-codegen` writes them; its test (run by `cargo test`, so by CI)
//! fails when a checked-in file differs, so neither SDK drifts from the API.
//! It is a crate of its own so that a broken SDK can always be regenerated.
//!
//! One small generator for both, rather than openapi-typescript and a Rust
//! generator: the document is small, and both SDKs get the same method
//! names, documentation and error mapping from the same code.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod rust;
mod typescript;

/// The name a `$ref` points at.
pub(crate) fn ref_name(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

/// `read_and_write` → `ReadAndWrite`, `room.created` → `RoomCreated`.
pub(crate) fn variant_name(value: &str) -> String {
    value
        .split(['_', '.'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|first| first.to_uppercase().chain(chars).collect::<String>()).unwrap_or_default()
        })
        .collect()
}

/// The schema a value follows when it is not null, and whether it may be
/// null: `{"oneOf": [{"type": "null"}, X]}` (how an optional `$ref` is
/// written) is `(X, true)`; anything else is itself, with `false`.
pub(crate) fn without_null(schema: &Value) -> (&Value, bool) {
    match schema["oneOf"].as_array().map(Vec::as_slice) {
        Some([first, second]) if first["type"] == "null" => (second, true),
        Some([first, second]) if second["type"] == "null" => (first, true),
        _ => (schema, false),
    }
}

/// A property's description: its own, or that of the schema inside a
/// `oneOf` with null.
pub(crate) fn description(property: &Value) -> Option<&str> {
    property["description"].as_str().or_else(|| without_null(property).0["description"].as_str())
}

/// A schema's JSON type (`None` for a `$ref` or any JSON) and whether it
/// may also be null (`"type": ["object", "null"]`).
pub(crate) fn kind_of(schema: &Value) -> Option<(&str, bool)> {
    match &schema["type"] {
        Value::String(kind) => Some((kind.as_str(), false)),
        Value::Array(kinds) => {
            let kinds: Vec<&str> = kinds.iter().filter_map(Value::as_str).collect();
            Some((kinds.iter().find(|kind| **kind != "null").copied().unwrap_or("null"), kinds.contains(&"null")))
        }
        _ => None,
    }
}

/// `list_rooms` → `listRooms`.
pub(crate) fn camel_case(value: &str) -> String {
    let pascal = variant_name(value);
    let mut chars = pascal.chars();
    chars.next().map(|first| first.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

/// `Idempotency-Key` → `idempotency_key`: a header's name as an argument.
pub(crate) fn header_argument(header: &str) -> String {
    header.to_lowercase().replace('-', "_")
}

/// Whether a header is the key that makes a call safe to retry. The SDKs
/// always send one, a fresh random key unless the caller gives theirs, and
/// retry such a call after a network failure or a 502, 503 or 504: the
/// server answers a repeat with the first result.
pub(crate) fn is_idempotency_key(header: &str) -> bool {
    header.eq_ignore_ascii_case("Idempotency-Key")
}

/// Turns the OpenAPI document into one file's text.
type Generator = fn(&Value) -> String;

/// Each generated file (relative to the repository) with its generator.
const OUTPUTS: [(&str, Generator); 2] =
    [("sdk-rust/src/generated.rs", rust::generate), ("sdk-js/src/generated.ts", typescript::generate)];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn document() -> Value {
    let path = root().join("docs/openapi.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).expect("the OpenAPI document is JSON")
}

fn main() {
    let document = document();
    for (file, generate) in OUTPUTS {
        std::fs::write(root().join(file), generate(&document)).unwrap_or_else(|err| panic!("{file}: {err}"));
        println!("wrote {file}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn snake_and_dotted_wire_values_become_rust_variants() {
        assert_eq!(super::variant_name("read_and_write"), "ReadAndWrite");
        assert_eq!(super::variant_name("room.created"), "RoomCreated");
        assert_eq!(super::camel_case("member.left"), "memberLeft");
    }

    #[test]
    fn the_checked_in_sdks_match_the_openapi_document() {
        let document = super::document();
        for (file, generate) in super::OUTPUTS {
            let checked_in = std::fs::read_to_string(super::root().join(file)).unwrap_or_default();
            assert!(checked_in == generate(&document), "{file} is out of date: run `cargo run -p comms-sdk-codegen`");
        }
    }
}
