//! A small reader for libgcrypt S-expressions, enough to import the RSA private keys in GNUnet's
//! test vectors (`(private-key (rsa (n #..#) (e ..) (d ..) (p ..) (q ..) (u ..)))`).
//!
//! Accepts canonical length-prefixed atoms (`3:rsa`), plain tokens, `#hex#` atoms and arbitrary
//! whitespace between them. Input is untrusted: every failure is an error, never a panic.

/// A parsed S-expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sexp {
    Atom(Vec<u8>),
    List(Vec<Sexp>),
}

/// Deepest nesting accepted; key files need four levels.
const MAX_DEPTH: usize = 32;

pub(crate) fn parse(input: &[u8]) -> Result<Sexp, &'static str> {
    let mut pos = 0;
    let value = parse_value(input, &mut pos, 0)?;
    skip_ws(input, &mut pos);
    // GNUnet's serialisation ends with a NUL; accept trailing NULs and whitespace only.
    if input[pos..]
        .iter()
        .any(|&b| b != 0 && !b.is_ascii_whitespace())
    {
        return Err("trailing data after S-expression");
    }
    Ok(value)
}

fn skip_ws(input: &[u8], pos: &mut usize) {
    while input.get(*pos).is_some_and(|b| b.is_ascii_whitespace()) {
        *pos += 1;
    }
}

fn parse_value(input: &[u8], pos: &mut usize, depth: usize) -> Result<Sexp, &'static str> {
    if depth > MAX_DEPTH {
        return Err("S-expression nested too deeply");
    }
    skip_ws(input, pos);
    match input.get(*pos) {
        None => Err("unexpected end of S-expression"),
        Some(b'(') => {
            *pos += 1;
            let mut items = Vec::new();
            loop {
                skip_ws(input, pos);
                match input.get(*pos) {
                    None => return Err("unterminated list"),
                    Some(b')') => {
                        *pos += 1;
                        return Ok(Sexp::List(items));
                    }
                    Some(_) => items.push(parse_value(input, pos, depth + 1)?),
                }
            }
        }
        Some(b')') => Err("unexpected ')'"),
        Some(b'#') => {
            *pos += 1;
            let start = *pos;
            while input.get(*pos).is_some_and(|&b| b != b'#') {
                *pos += 1;
            }
            let hex = input.get(start..*pos).ok_or("bad hex atom")?;
            if input.get(*pos) != Some(&b'#') {
                return Err("unterminated hex atom");
            }
            *pos += 1;
            decode_hex(hex).map(Sexp::Atom)
        }
        Some(b) if b.is_ascii_digit() => {
            let start = *pos;
            while input.get(*pos).is_some_and(u8::is_ascii_digit) {
                *pos += 1;
            }
            let digits = std::str::from_utf8(&input[start..*pos]).map_err(|_| "bad length")?;
            if input.get(*pos) == Some(&b':') {
                let len: usize = digits.parse().map_err(|_| "bad atom length")?;
                *pos += 1;
                let end = pos.checked_add(len).ok_or("bad atom length")?;
                let atom = input.get(*pos..end).ok_or("atom runs past the end")?;
                *pos = end;
                Ok(Sexp::Atom(atom.to_vec()))
            } else {
                Ok(Sexp::Atom(digits.as_bytes().to_vec()))
            }
        }
        Some(_) => {
            let start = *pos;
            while input
                .get(*pos)
                .is_some_and(|&b| b.is_ascii_alphanumeric() || b"-./_:*+=".contains(&b))
            {
                *pos += 1;
            }
            if *pos == start {
                return Err("unexpected byte in S-expression");
            }
            Ok(Sexp::Atom(input[start..*pos].to_vec()))
        }
    }
}

fn decode_hex(hex: &[u8]) -> Result<Vec<u8>, &'static str> {
    let digits: Vec<u8> = hex
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err("odd number of hex digits");
    }
    digits
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16).ok_or("bad hex digit")?;
            let lo = (pair[1] as char).to_digit(16).ok_or("bad hex digit")?;
            Ok((hi * 16 + lo) as u8)
        })
        .collect()
}

impl Sexp {
    /// The list's first element if it is an atom (the list's "tag").
    fn tag(&self) -> Option<&[u8]> {
        match self {
            Sexp::List(items) => match items.first() {
                Some(Sexp::Atom(a)) => Some(a),
                _ => None,
            },
            Sexp::Atom(_) => None,
        }
    }

    /// Depth-first search for the first list tagged `tag`.
    pub(crate) fn find(&self, tag: &[u8]) -> Option<&Sexp> {
        if self.tag() == Some(tag) {
            return Some(self);
        }
        match self {
            Sexp::List(items) => items.iter().find_map(|item| item.find(tag)),
            Sexp::Atom(_) => None,
        }
    }

    /// For a list `(tag value)`, the atom `value` of the direct child tagged `name`.
    pub(crate) fn value_of(&self, name: &[u8]) -> Option<&[u8]> {
        let Sexp::List(items) = self else { return None };
        items.iter().find_map(|item| match item {
            Sexp::List(pair) if item.tag() == Some(name) => match pair.get(1) {
                Some(Sexp::Atom(v)) => Some(v.as_slice()),
                _ => None,
            },
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_canonical_and_advanced_forms() {
        let s = parse(
            b"(8:key-data\n (11:private-key (3:rsa (1:n3:\x00\x01\x02) (e #010001#) (d 42))))\0",
        )
        .expect("valid");
        let rsa = s
            .find(b"private-key")
            .and_then(|k| k.find(b"rsa"))
            .expect("rsa list");
        assert_eq!(rsa.value_of(b"n"), Some(&[0u8, 1, 2][..]));
        assert_eq!(rsa.value_of(b"e"), Some(&[1u8, 0, 1][..]));
        assert_eq!(rsa.value_of(b"d"), Some(&b"42"[..]));
        assert_eq!(rsa.value_of(b"p"), None);
    }

    #[test]
    fn rejects_malformed_input_without_panicking() {
        for bad in [
            &b""[..],
            b"(",
            b")",
            b"(3:ab)",
            b"(99999999999999999999999:x)",
            b"(#0#)",
            b"(#zz#)",
            b"(a) b",
            b"(\x01)",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let deep = "(".repeat(100) + &")".repeat(100);
        assert!(parse(deep.as_bytes()).is_err());
    }
}
