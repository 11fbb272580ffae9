//! The words a subtitle cue is indexed by and a text query is matched
//! against, for the rankers' lexical match: an exact name or phrase said in
//! a video is found even where the embedding misses it.
//!
//! Chinese is cut into words by jieba in search mode (long words also yield
//! their dictionary sub-words, so "自行车道" matches a query for "自行车"),
//! and every pair of neighbouring Han characters is a term too: where a
//! character is misread (text recognised in the picture: "需要多休息" read
//! as "击要多休尽") or segmented differently, the pairs around it still
//! match, as in the character-bigram indexing of Chinese retrieval.
//! Other scripts are split into lower-cased words. Words that occur in
//! almost every sentence are left out, so they can neither match nor dilute
//! a query's coverage.

use super::{latin_words, normalise, script_runs, segmenter};

/// Chinese particles and pronouns, and English function words.
const STOP_WORDS: &[&str] = &[
    "的", "了", "着", "过", "吗", "呢", "吧", "啊", "是", "在", "和", "与", "也", "都", "就", "这",
    "那", "个", "只", "一", "我", "你", "他", "她", "它", "a", "an", "the", "of", "in", "on", "at",
    "to", "and", "or", "is", "are", "was", "were", "be", "with", "for", "by", "it", "its", "this",
    "that", "as", "from", "i", "you", "he", "she", "we", "they",
];

/// The distinct terms of `text`, in first-occurrence order.
pub fn terms(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |word: &str| {
        let word = word.to_lowercase();
        if !STOP_WORDS.contains(&word.as_str()) && !out.contains(&word) {
            out.push(word);
        }
    };
    let text = normalise(text);
    for (han, run) in script_runs(&text) {
        if han {
            segmenter()
                .cut_for_search(run, false)
                .iter()
                .for_each(|t| add(t.word));
            let chars: Vec<&str> = run
                .char_indices()
                .map(|(i, c)| &run[i..i + c.len_utf8()])
                .collect();
            for pair in chars.windows(2) {
                add(&pair.concat());
            }
        } else {
            latin_words(run).for_each(&mut add);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::terms;

    #[test]
    fn chinese_and_latin_words_become_terms() {
        let t = terms("我们在海边跳舞");
        assert!(t.contains(&"海边".to_string()), "{t:?}");
        assert!(t.contains(&"跳舞".to_string()), "{t:?}");
        assert!(!t.contains(&"在".to_string()), "{t:?}");
        // Neighbouring characters pair up, across jieba's word boundaries.
        assert!(t.contains(&"边跳".to_string()), "{t:?}");
        assert!(t.contains(&"在海".to_string()), "{t:?}");
        // A misread character spoils only the pairs it is in.
        let misread = terms("医生说你击要多休尽几天");
        let query = terms("需要多休息");
        let shared: Vec<&String> = query.iter().filter(|t| misread.contains(t)).collect();
        assert!(shared.contains(&&"要多".to_string()), "{shared:?}");
        assert!(shared.contains(&&"多休".to_string()), "{shared:?}");
        assert_eq!(terms("The Chelsea cat, THE cat"), vec!["chelsea", "cat"]);
        assert_eq!(terms("Dr. Zhivago 在"), vec!["dr", "zhivago"]);
        assert_eq!(terms("ＺＨＩＶＡＧＯ"), vec!["zhivago"]);
        assert!(terms("the of a").is_empty());
    }
}
