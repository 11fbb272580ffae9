//! Which language a query is written in, coarsely: enough to tell a user
//! that an English-only pack cannot read their Chinese query, instead of
//! returning noise. Decided by script, since scripts are unambiguous where
//! it matters (CJK, Cyrillic, Arabic...); Latin-script text counts as English.

/// ISO 639-1 code of the query's language: the most frequent non-Latin
/// script decides; Latin script and text without letters count as `"en"`.
pub fn detect(text: &str) -> &'static str {
    let mut counts = [0usize; 7];
    const LANGS: [&str; 7] = ["en", "zh", "ja", "ko", "ru", "ar", "el"];
    for c in text.chars() {
        let slot = match c as u32 {
            0x3040..=0x30FF => 2,                   // kana
            0xAC00..=0xD7AF | 0x1100..=0x11FF => 3, // hangul
            _ if super::is_han(c) => 1,
            0x0400..=0x04FF => 4,
            0x0600..=0x06FF => 5,
            0x0370..=0x03FF => 6,
            _ if c.is_alphabetic() => 0,
            _ => continue,
        };
        counts[slot] += 1;
    }
    // Japanese mixes kana with han: any kana makes it Japanese.
    if counts[2] > 0 {
        return "ja";
    }
    // Any non-Latin script decides: Latin words inside a Chinese query
    // (brand names, "cat") do not make it English.
    let (best, &n) = counts[1..]
        .iter()
        .enumerate()
        .max_by_key(|(i, n)| (**n, usize::MAX - i))
        .expect("non-empty");
    if n == 0 { "en" } else { LANGS[best + 1] }
}

#[cfg(test)]
mod tests {
    use super::detect;

    #[test]
    fn scripts_map_to_languages() {
        assert_eq!(detect("a black bicycle leaning against a wall"), "en");
        assert_eq!(detect("一个人在海边跳舞"), "zh");
        assert_eq!(detect("海辺で踊る人"), "ja");
        assert_eq!(detect("바닷가에서 춤추는 사람"), "ko");
        assert_eq!(detect("кошка на диване"), "ru");
        assert_eq!(detect("12345 !!"), "en");
        // A Chinese query with one English word is still Chinese.
        assert_eq!(detect("一只猫 cat"), "zh");
    }
}
