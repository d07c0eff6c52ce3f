//! Glob patterns with IAM's two wildcards: `*` (any run of characters, including none) and `?`
//! (exactly one character). Used for Action, Resource and the `...Like` / `Arn...` operators.
//!
//! Case rules belong to the caller: actions are compared after lowercasing both sides, ARNs and
//! condition values as they are.

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Token {
    /// A character that must appear as is.
    Literal(char),
    /// `*`: any run of characters.
    AnyRun,
    /// `?`: exactly one character.
    AnyChar,
}

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// Compiles `text`, reading `*` and `?` as wildcards.
    pub fn glob(text: &str) -> Self {
        let mut pattern = Self::default();
        pattern.push_glob(text);
        pattern
    }

    /// A pattern that matches exactly `text` (its `*` and `?` are plain characters).
    pub fn literal(text: &str) -> Self {
        let mut pattern = Self::default();
        pattern.push_literal(text);
        pattern
    }

    /// Appends `text` with `*` and `?` read as wildcards.
    pub fn push_glob(&mut self, text: &str) {
        for c in text.chars() {
            self.tokens.push(match c {
                '*' => Token::AnyRun,
                '?' => Token::AnyChar,
                other => Token::Literal(other),
            });
        }
    }

    /// Appends `text` as plain characters.
    pub fn push_literal(&mut self, text: &str) {
        self.tokens.extend(text.chars().map(Token::Literal));
    }

    /// The same pattern with every literal lowercased (for case-insensitive matching).
    pub fn to_lowercase(&self) -> Self {
        let tokens = self
            .tokens
            .iter()
            .flat_map(|token| match token {
                Token::Literal(c) => c.to_lowercase().map(Token::Literal).collect::<Vec<_>>(),
                other => vec![other.clone()],
            })
            .collect();
        Self { tokens }
    }

    /// True when the pattern contains `*` or `?` wildcards.
    pub fn has_wildcards(&self) -> bool {
        self.tokens.iter().any(|t| !matches!(t, Token::Literal(_)))
    }

    /// True when the pattern is a lone `*` (matches everything).
    pub fn is_match_all(&self) -> bool {
        !self.tokens.is_empty() && self.tokens.iter().all(|t| *t == Token::AnyRun)
    }

    /// The text this pattern matches when it has no wildcards.
    pub fn as_literal(&self) -> Option<String> {
        self.tokens
            .iter()
            .map(|t| match t {
                Token::Literal(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    /// Does the pattern match all of `text`? Case-sensitive; linear backtracking on the last `*`.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        self.matches_chars(&text)
    }

    /// [`Self::matches`] on the characters of a text.
    fn matches_chars(&self, text: &[char]) -> bool {
        let tokens = &self.tokens;
        let (mut t, mut p) = (0usize, 0usize);
        // Position after the last `*` seen, and the text position it was tried at.
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match tokens.get(p) {
                Some(Token::Literal(c)) if *c == text[t] => {
                    t += 1;
                    p += 1;
                }
                Some(Token::AnyChar) => {
                    t += 1;
                    p += 1;
                }
                Some(Token::AnyRun) => {
                    p += 1;
                    star = Some((p, t));
                }
                _ => match star {
                    Some((star_p, star_t)) => {
                        p = star_p;
                        t = star_t + 1;
                        star = Some((star_p, star_t + 1));
                    }
                    None => return false,
                },
            }
        }
        tokens[p.min(tokens.len())..]
            .iter()
            .all(|t| *t == Token::AnyRun)
    }

    /// Is every string matched by `specific` also matched by `self`? Sound (never says yes
    /// wrongly): a `*` of `specific` can only be covered by a `*` of `self`.
    pub fn subsumes(&self, specific: &Pattern) -> bool {
        // Every pattern covers itself (the walk below says so too, in quadratic time).
        if self.tokens == specific.tokens {
            return true;
        }
        // A pattern without wildcards matches one string: `self` covers it when it matches it
        // (the walk below gives the same answer, in quadratic time).
        if let Some(text) = specific
            .tokens
            .iter()
            .map(|t| match t {
                Token::Literal(c) => Some(*c),
                _ => None,
            })
            .collect::<Option<Vec<char>>>()
        {
            return self.matches_chars(&text);
        }
        self.covers(specific)
    }

    /// [`Self::subsumes`] by walking both patterns, for any `specific`.
    fn covers(&self, specific: &Pattern) -> bool {
        let general = &self.tokens;
        let specific = &specific.tokens;
        let n = specific.len();
        // reachable[j]: general[..i] can cover specific[..j]. Every `true` of it lies in
        // lo..=hi, so that a literal run of `general` (one reachable place) costs one step per
        // token, not one per token and place; `next` is all `false` at each token's start.
        let mut reachable = vec![false; n + 1];
        reachable[0] = true;
        let mut next = vec![false; n + 1];
        let (mut lo, mut hi) = (0usize, 0usize);
        for token in general {
            let (mut next_lo, mut next_hi) = (usize::MAX, 0usize);
            let mut reach = |j: usize, next: &mut Vec<bool>| {
                next[j] = true;
                next_lo = next_lo.min(j);
                next_hi = next_hi.max(j);
            };
            match token {
                Token::AnyRun => {
                    if let Some(first) = (lo..=hi).find(|&j| reachable[j]) {
                        for j in first..=n {
                            reach(j, &mut next);
                        }
                    }
                }
                Token::AnyChar => {
                    for j in lo..=hi.min(n.saturating_sub(1)) {
                        if j < n && reachable[j] && !matches!(specific[j], Token::AnyRun) {
                            reach(j + 1, &mut next);
                        }
                    }
                }
                Token::Literal(c) => {
                    for j in lo..=hi.min(n.saturating_sub(1)) {
                        if j < n && reachable[j] && specific[j] == Token::Literal(*c) {
                            reach(j + 1, &mut next);
                        }
                    }
                }
            }
            reachable[lo..=hi].fill(false);
            std::mem::swap(&mut reachable, &mut next);
            // Nothing of `specific` can be covered any more (a literal differed).
            if next_lo == usize::MAX {
                return false;
            }
            (lo, hi) = (next_lo, next_hi);
        }
        reachable[n]
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for token in &self.tokens {
            match token {
                Token::Literal(c) => write!(f, "{c}")?,
                Token::AnyRun => write!(f, "*")?,
                Token::AnyChar => write!(f, "?")?,
            }
        }
        Ok(())
    }
}

/// Case-sensitive glob match of `text` against `pattern` text.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    ascii_glob_match(pattern, text, false).unwrap_or_else(|| Pattern::glob(pattern).matches(text))
}

/// Case-insensitive glob match (IAM action names).
pub fn glob_match_ignore_case(pattern: &str, text: &str) -> bool {
    ascii_glob_match(pattern, text, true)
        .unwrap_or_else(|| Pattern::glob(&pattern.to_lowercase()).matches(&text.to_lowercase()))
}

/// [`Pattern::matches`] of `pattern` compiled as a glob, on the bytes of ASCII texts without
/// compiling it: policy evaluation matches every statement's actions and resources for each
/// request. `None` when either text is not ASCII (`?` is then one character, not one byte, and
/// lowercasing is Unicode's).
fn ascii_glob_match(pattern: &str, text: &str, ignore_case: bool) -> Option<bool> {
    if !pattern.is_ascii() || !text.is_ascii() {
        return None;
    }
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let same = |a: u8, b: u8| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    // The walk of `Pattern::matches_chars`, byte by byte.
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                star = Some((p, t));
            }
            Some(b'?') => {
                t += 1;
                p += 1;
            }
            Some(&c) if same(c, text[t]) => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return Some(false),
            },
        }
    }
    Some(pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The walk of `covers` over every place of `specific` at each token, as it was before
    /// it kept to the reachable window.
    fn covers_everywhere(general: &Pattern, specific: &Pattern) -> bool {
        let specific = &specific.tokens;
        let mut reachable = vec![false; specific.len() + 1];
        reachable[0] = true;
        for token in &general.tokens {
            let mut next = vec![false; specific.len() + 1];
            match token {
                Token::AnyRun => {
                    let mut any = false;
                    for j in 0..=specific.len() {
                        any |= reachable[j];
                        next[j] = any;
                    }
                }
                Token::AnyChar => {
                    for j in 0..specific.len() {
                        if reachable[j] && !matches!(specific[j], Token::AnyRun) {
                            next[j + 1] = true;
                        }
                    }
                }
                Token::Literal(c) => {
                    for j in 0..specific.len() {
                        if reachable[j] && specific[j] == Token::Literal(*c) {
                            next[j + 1] = true;
                        }
                    }
                }
            }
            reachable = next;
        }
        reachable[specific.len()]
    }

    #[test]
    fn basic_matches() {
        assert!(glob_match("*", ""));
        assert!(glob_match("s3:Get*", "s3:GetObject"));
        assert!(!glob_match("s3:Get*", "s3:PutObject"));
        assert!(glob_match("arn:aws:s3:::b/*", "arn:aws:s3:::b/a/b/c"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*a*b", "xxaybyb"));
        assert!(!glob_match("Arn", "arn"));
        assert!(glob_match_ignore_case("S3:getobject", "s3:GetObject"));
    }

    #[test]
    fn subsumption() {
        let general = Pattern::glob("arn:aws:s3:::b/*");
        assert!(general.subsumes(&Pattern::glob("arn:aws:s3:::b/x/*")));
        assert!(general.subsumes(&Pattern::glob("arn:aws:s3:::b/?")));
        assert!(!general.subsumes(&Pattern::glob("arn:aws:s3:::*")));
        assert!(!Pattern::glob("a?").subsumes(&Pattern::glob("a*")));
        assert!(Pattern::glob("*").subsumes(&Pattern::glob("anything*?")));
        assert!(!Pattern::literal("a*").subsumes(&Pattern::glob("a*")));
    }

    /// Reference: translate the glob to an anchored regex-free recursive matcher.
    fn reference(pattern: &[char], text: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('*', rest)) => (0..=text.len()).any(|i| reference(rest, &text[i..])),
            Some(('?', rest)) => !text.is_empty() && reference(rest, &text[1..]),
            Some((c, rest)) => text.first() == Some(c) && reference(rest, &text[1..]),
        }
    }

    proptest! {
        #[test]
        fn matcher_agrees_with_reference(pattern in "[ab*?:]{0,8}", text in "[ab:]{0,10}") {
            let p: Vec<char> = pattern.chars().collect();
            let t: Vec<char> = text.chars().collect();
            prop_assert_eq!(Pattern::glob(&pattern).matches(&text), reference(&p, &t));
        }

        /// A pattern without wildcards stands for one string: covering it is matching it.
        #[test]
        fn subsuming_a_plain_string_is_matching_it(general in "[ab*?]{0,6}", text in "[abc]{0,8}") {
            let g = Pattern::glob(&general);
            prop_assert_eq!(g.subsumes(&Pattern::literal(&text)), g.matches(&text));
        }

        /// The walk over the reachable window answers as the walk over every place does.
        #[test]
        fn the_windowed_walk_agrees_with_the_full_walk(general in "[ab*?]{0,7}", specific in "[ab*?]{0,7}") {
            let (g, s) = (Pattern::glob(&general), Pattern::glob(&specific));
            prop_assert_eq!(g.covers(&s), covers_everywhere(&g, &s));
        }

        /// The shortcut for a plain string gives what walking both patterns gives.
        #[test]
        fn the_shortcut_agrees_with_the_walk(general in "[ab*?]{0,6}", text in "[abc]{0,8}") {
            let (g, s) = (Pattern::glob(&general), Pattern::literal(&text));
            prop_assert_eq!(g.subsumes(&s), g.covers(&s));
        }

        /// The shortcut for a pattern and itself gives what walking both gives: it covers
        /// itself.
        #[test]
        fn a_pattern_covers_itself(general in "[ab*?]{0,8}") {
            let g = Pattern::glob(&general);
            prop_assert!(g.covers(&g));
            prop_assert!(g.subsumes(&g));
        }

        /// The walk on ASCII bytes answers as the compiled pattern does, in either case.
        #[test]
        fn the_ascii_walk_agrees_with_the_pattern(pattern in "[aAbB*?]{0,8}", text in "[aAbBcC*?]{0,10}") {
            prop_assert_eq!(ascii_glob_match(&pattern, &text, false), Some(Pattern::glob(&pattern).matches(&text)));
            prop_assert_eq!(
                ascii_glob_match(&pattern, &text, true),
                Some(Pattern::glob(&pattern.to_lowercase()).matches(&text.to_lowercase()))
            );
        }

        #[test]
        fn subsumption_is_sound(general in "[ab*?]{0,6}", specific in "[ab*?]{0,6}", text in "[abc]{0,8}") {
            let g = Pattern::glob(&general);
            let s = Pattern::glob(&specific);
            if g.subsumes(&s) && s.matches(&text) {
                prop_assert!(g.matches(&text));
            }
        }
    }
}
