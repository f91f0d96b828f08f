//! Field-level form errors, shown beside their fields.

use std::borrow::Cow;

use secrecy::{ExposeSecret, SecretString};

/// Messages keyed by field name, in the order they were found.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<(Cow<'static, str>, String)>);

impl FieldErrors {
    /// Adds a message for `field` unless it already has one.
    pub fn add(&mut self, field: impl Into<Cow<'static, str>>, message: impl Into<String>) {
        let field = field.into();
        if self.get(&field).is_none() {
            self.0.push((field, message.into()));
        }
    }

    /// The message for `field`, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    /// Field names and messages, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(f, m)| (f.as_ref(), m.as_str()))
    }

    /// Whether the form is valid.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One line for the alert at the top of the form.
    pub fn summary(&self) -> String {
        match self.0.len() {
            0 => String::new(),
            1 => "Please fix the problem below.".into(),
            n => format!("Please fix the {n} problems below."),
        }
    }
}

/// Formats a time for tables: `2026-11-28 15:53 UTC`.
pub fn when(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.format(&format).unwrap_or_default()
}

/// A single-line text field, trimmed: refused (with a message beside it) when it
/// holds control characters such as NUL or is longer than `max` characters.
pub fn text(errors: &mut FieldErrors, field: &'static str, value: &str, max: usize) -> String {
    let value = value.trim();
    if value.chars().any(char::is_control) {
        errors.add(
            field,
            "Remove the control characters (such as NUL or tabs) from this field.",
        );
    } else if value.chars().count() > max {
        errors.add(field, format!("Use at most {max} characters."));
    }
    value.to_owned()
}

/// A new password and its confirmation, posted as fields `field` and
/// `confirm_field`: refused beside the field when it has control characters, is
/// weak (`context` holds words it must not lean on, like the email), or the two
/// differ.
pub fn new_password(
    errors: &mut FieldErrors,
    (field, password): (&'static str, &SecretString),
    (confirm_field, confirmation): (&'static str, &SecretString),
    context: &[&str],
) {
    if password.expose_secret().chars().any(char::is_control) {
        errors.add(field, "Passwords cannot contain control characters.");
    } else if let Some(reason) = crate::password::weakness(password, context) {
        errors.add(field, reason);
    }
    if password.expose_secret() != confirmation.expose_secret() {
        errors.add(confirm_field, "The two passwords differ.");
    }
}
