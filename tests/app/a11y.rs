//! What an accessibility checker (axe) would flag first, checked without one:
//! no axe-core is available offline, so the browser tests run [`audit`] on the
//! DOM of each page they visit, and the stylesheet's colour pairs are checked
//! against WCAG AA contrast here.

use crate::helpers::strip_tags;

/// One start tag: its name, attributes, and where its content starts.
struct Tag {
    name: String,
    attributes: Vec<(String, String)>,
    end: usize,
}

impl Tag {
    fn get(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The start tags of serialized DOM (`outerHTML`: attributes in double quotes).
fn start_tags(html: &str) -> Vec<Tag> {
    let bytes = html.as_bytes();
    let mut tags = Vec::new();
    let mut i = 0;
    while let Some(offset) = html[i..].find('<') {
        let mut at = i + offset + 1;
        let name_end = html[at..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(html.len(), |n| at + n);
        if name_end == at {
            i = at;
            continue;
        }
        let name = html[at..name_end].to_ascii_lowercase();
        at = name_end;
        let mut attributes = Vec::new();
        while at < bytes.len() && bytes[at] != b'>' {
            if bytes[at].is_ascii_whitespace() || bytes[at] == b'/' {
                at += 1;
                continue;
            }
            let attr_end = html[at..]
                .find(|c: char| c == '=' || c == '>' || c.is_ascii_whitespace())
                .map_or(html.len(), |n| at + n);
            let attr = html[at..attr_end].to_ascii_lowercase();
            at = attr_end;
            let mut value = String::new();
            if bytes.get(at) == Some(&b'=') && bytes.get(at + 1) == Some(&b'"') {
                let close = html[at + 2..].find('"').map_or(html.len(), |n| at + 2 + n);
                value = html[at + 2..close].to_owned();
                at = close + 1;
            }
            attributes.push((attr, value));
        }
        tags.push(Tag {
            name,
            attributes,
            end: at + 1,
        });
        i = at.min(html.len());
    }
    tags
}

/// What an accessibility checker would flag first, checked on the DOM: a
/// language, labels for every field, unique ids, one `h1` and no skipped
/// heading levels, text (or a label) on every button and link, a caption or
/// label on every table, text alternatives for images.
pub(crate) fn audit(html: &str) -> Vec<String> {
    let tags = start_tags(html);
    let mut problems = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for tag in &tags {
        if let Some(id) = tag.get("id")
            && !ids.insert(id.to_owned())
        {
            problems.push(format!("duplicate id {id:?}"));
        }
    }
    let label_targets: Vec<&str> = tags
        .iter()
        .filter(|t| t.name == "label")
        .filter_map(|t| t.get("for"))
        .collect();
    let inner_text = |tag: &Tag| {
        let close = format!("</{}>", tag.name);
        let rest = &html[tag.end.min(html.len())..];
        strip_tags(&rest[..rest.find(&close).unwrap_or(rest.len())])
    };
    let mut last_heading = 0;
    let mut h1s = 0;
    for tag in &tags {
        let labelled = tag.get("aria-label").is_some_and(|l| !l.trim().is_empty())
            || tag.get("aria-labelledby").is_some();
        match tag.name.as_str() {
            "html" if tag.get("lang").is_none_or(str::is_empty) => {
                problems.push("no lang on <html>".into());
            }
            "input" | "select" | "textarea" => {
                if tag.get("type") == Some("hidden") {
                    continue;
                }
                let id = tag.get("id").unwrap_or_default();
                if !labelled && (id.is_empty() || !label_targets.contains(&id)) {
                    problems.push(format!(
                        "<{} name={:?}> has no label",
                        tag.name,
                        tag.get("name")
                    ));
                }
            }
            "button" | "a" if !labelled && inner_text(tag).is_empty() => {
                problems.push(format!("a <{}> without text", tag.name));
            }
            "img" if tag.get("alt").is_none() => problems.push("an <img> without alt".into()),
            "svg" if tag.get("role") == Some("img") && !labelled => {
                problems.push("an <svg role=img> without a label".into());
            }
            "table" if !labelled && !html[tag.end..].trim_start().starts_with("<caption") => {
                problems.push("a <table> without a caption".into());
            }
            name if name.len() == 2 && name.starts_with('h') => {
                if let Ok(level) = name[1..].parse::<u32>() {
                    if level == 1 {
                        h1s += 1;
                    }
                    if level > last_heading + 1 {
                        problems.push(format!("<{name}> follows <h{last_heading}>"));
                    }
                    last_heading = level;
                }
            }
            _ => {}
        }
    }
    if h1s != 1 {
        problems.push(format!("{h1s} <h1> elements"));
    }
    problems
}

/// WCAG contrast ratio of two `#rgb` or `#rrggbb` colours.
fn contrast(a: &str, b: &str) -> f64 {
    let luminance = |hex: &str| {
        let hex = if hex.len() == 4 {
            hex.chars()
                .flat_map(|c| if c == '#' { vec![c] } else { vec![c, c] })
                .collect()
        } else {
            hex.to_owned()
        };
        let channel = |i: usize| {
            let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
    };
    let (x, y) = (luminance(a), luminance(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

#[test]
fn the_stylesheets_text_colours_meet_wcag_aa_contrast() {
    let css = include_str!("../../static/paddock.css");
    let var = |name: &str| -> String {
        let at = css
            .find(&format!("--{name}: "))
            .unwrap_or_else(|| panic!("--{name}"));
        css[at + name.len() + 4..at + name.len() + 11].to_owned()
    };
    let literal = |hex: &str| -> String {
        assert!(css.contains(hex), "{hex} is used in the stylesheet");
        hex.to_owned()
    };
    let pairs = [
        ("text", var("ink"), var("paper"), 4.5),
        ("text on cards", var("ink"), literal("#fff"), 4.5),
        ("hints and footer", var("muted"), var("paper"), 4.5),
        ("hints on cards", var("muted"), literal("#ffffff"), 4.5),
        ("links", var("accent"), var("paper"), 4.5),
        ("header text", literal("#f4f1e8"), var("brand"), 4.5),
        ("buttons", literal("#fff"), var("brand"), 4.5),
        ("secondary buttons", var("brand"), literal("#fff"), 4.5),
        (
            "danger buttons and field errors",
            var("loss"),
            var("paper"),
            4.5,
        ),
        ("alerts", var("ink"), var("warn-bg"), 4.5),
        ("notices", var("ink"), var("ok-bg"), 4.5),
        ("gains", var("gain"), literal("#ffffff"), 4.5),
        ("table headers", var("ink"), literal("#f0f2ee"), 4.5),
        ("paper badge", literal("#1f3f7a"), literal("#e6eefc"), 4.5),
        ("live badge", literal("#8a3b0b"), literal("#fde8d8"), 4.5),
        (
            "focus ring in the header",
            literal("#e0b84a"),
            var("brand"),
            3.0,
        ),
        ("focus ring on the page", var("ink"), var("paper"), 3.0),
    ];
    for (what, fg, bg, minimum) in pairs {
        let ratio = contrast(&fg, &bg);
        assert!(
            ratio >= minimum,
            "{what}: {fg} on {bg} is {ratio:.2}:1, below {minimum}:1"
        );
    }
}

#[test]
fn the_audit_finds_what_it_looks_for() {
    let bad = r#"<html><body><h2>Skipped</h2><input id="a" name="a"><input id="a" name="b" aria-label="B"><button></button><table><tr><td>x</td></tr></table></body></html>"#;
    let problems = audit(bad);
    for expected in [
        "no lang on <html>",
        "duplicate id \"a\"",
        "<input name=Some(\"a\")> has no label",
        "a <button> without text",
        "a <table> without a caption",
        "<h2> follows <h0>",
        "0 <h1> elements",
    ] {
        assert!(
            problems.iter().any(|p| p == expected),
            "{expected} in {problems:?}"
        );
    }
    let good = r#"<html lang="en"><body><h1>T</h1><label for="a">A</label><input id="a" name="a"><input type="hidden" name="h"><button aria-label="Close"></button><h2>S</h2><table><caption>C</caption></table></body></html>"#;
    assert_eq!(audit(good), Vec::<String>::new());
}
