//! XML escaping, spelled the way libxml2 serialises createrepo_c's documents so
//! that Cairn's output and createrepo_c's can be compared byte for byte.

/// Characters XML 1.0 cannot carry at all, even escaped. createrepo_c refuses
/// a package containing them; Cairn drops them from the metadata instead, so a
/// stray control character in a changelog does not block a publish.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Appends `s` as element text: `&`, `<`, `>` and carriage return escaped (an
/// unescaped CR would be normalised away by any XML parser).
pub(crate) fn text(out: &mut String, s: &str) {
    for c in s.chars().filter(|&c| is_xml_char(c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Appends `s` as a double-quoted attribute value. White space other than the
/// plain space is escaped so attribute normalisation keeps it, and non-ASCII
/// characters become character references, as libxml2 does without a
/// document encoding.
pub(crate) fn attr(out: &mut String, s: &str) {
    for c in s.chars().filter(|&c| is_xml_char(c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if !c.is_ascii() => out.push_str(&format!("&#x{:X};", u32::from(c))),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_libxml2() {
        let mut t = String::new();
        text(&mut t, "a<b>&\"c\"\r\n\tcaf\u{e9}\u{1}\u{fffe}");
        assert_eq!(t, "a&lt;b&gt;&amp;\"c\"&#13;\n\tcaf\u{e9}");

        let mut a = String::new();
        attr(&mut a, "J\u{f6}rg <j@x> \"q\"\t\r\n\u{1f600}\u{0}");
        assert_eq!(
            a,
            "J&#xF6;rg &lt;j@x&gt; &quot;q&quot;&#9;&#13;&#10;&#x1F600;"
        );
    }
}
