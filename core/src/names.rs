//! Validated names. A name is parsed once at the edge and carried as a
//! newtype, so the rest of the code never sees an unchecked one.

use std::fmt;

/// Why a name was refused; the text is shown to API clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be 1-64 characters from A-Z a-z 0-9 - _ . (got {got:?})")]
pub struct InvalidName {
    what: &'static str,
    got: String,
}

fn check(what: &'static str, text: &str) -> Result<(), InvalidName> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if (1..=64).contains(&text.len()) && text.chars().all(valid_char) {
        Ok(())
    } else {
        let got: String = text.chars().take(80).collect();
        Err(InvalidName { what, got })
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        ///
        /// Deserializing parses, so a path or body field of this type is
        /// checked by the extractor that reads it.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        impl TryFrom<String> for $name {
            type Error = InvalidName;

            fn try_from(text: String) -> Result<Self, InvalidName> {
                check($what, &text).map(|()| Self(text))
            }
        }

        impl $name {
            /// Checks the rule of `docs/protocol.md#room-names`: 1–64 characters
            /// from `A–Z a–z 0–9 - _ .`.
            ///
            /// # Errors
            ///
            /// [`InvalidName`] when the rule is broken.
            pub fn parse(text: &str) -> Result<Self, InvalidName> {
                check($what, text).map(|()| Self(text.to_owned()))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A room name, unique per app.
    RoomName,
    "room name"
);
name_type!(
    /// An app name, unique on the server. Same character rule as rooms, so
    /// names survive URLs and shells unquoted.
    AppName,
    "app name"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_spec_alphabet() {
        for ok in ["lobby", "a", "A-Z_a.z-09", &"x".repeat(64)] {
            assert!(RoomName::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bad in ["", &"x".repeat(65), "has space", "slash/", "ünï", "semi;", "a%20b", "tab\t"] {
            assert!(RoomName::parse(bad).is_err(), "{bad}");
            assert!(AppName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_names_what_was_wrong() {
        let err = RoomName::parse("a b").unwrap_err().to_string();
        assert!(err.starts_with("room name must be"), "{err}");
    }
}
