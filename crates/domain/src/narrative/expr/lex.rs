//! The tokenizer, and [`ParseError`], the syntax error both it and the parser report.

use thiserror::Error;

/// A syntax error with a byte offset.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("syntax error at column {}: {message}", .offset + 1)]
pub struct ParseError {
    /// Byte offset in the source.
    pub offset: usize,
    /// What went wrong.
    pub message: String,
}

/// A token.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    Int(i64),
    Str(String),
    Ident(String),
    Dot,
    Comma,
    LParen,
    RParen,
    LBrack,
    RBrack,
    Op(&'static str),
    End,
}

fn err(offset: usize, message: &str) -> ParseError {
    ParseError {
        offset,
        message: message.to_string(),
    }
}

/// Splits `src` into tokens with their byte offsets, ending with [`Tok::End`].
pub(super) fn lex(src: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let (tok, end) = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'0'..=b'9' => int(src, start)?,
            b'"' | b'\'' => string(src, start)?,
            b'A'..=b'Z' | b'a'..=b'z' | b'_' => ident(src, start),
            _ => operator(src, start)?,
        };
        out.push((start, tok));
        i = end;
    }
    out.push((src.len(), Tok::End));
    Ok(out)
}

/// An integer literal starting at `start`; returns the token and the offset after it.
fn int(src: &str, start: usize) -> Result<(Tok, usize), ParseError> {
    let bytes = src.as_bytes();
    let mut i = start;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let n: i64 = src[start..i]
        .parse()
        .map_err(|_| err(start, "integer literal out of range"))?;
    Ok((Tok::Int(n), i))
}

/// A string literal (single or double quotes, `\n` and `\x` escapes) starting at `start`.
fn string(src: &str, start: usize) -> Result<(Tok, usize), ParseError> {
    let quote = src.as_bytes()[start];
    let body = start + 1;
    let mut s = String::new();
    let mut chars = src[body..].char_indices();
    loop {
        let Some((off, ch)) = chars.next() else {
            return Err(err(start, "unterminated string literal"));
        };
        if ch as u32 == u32::from(quote) {
            return Ok((Tok::Str(s), body + off + 1));
        }
        if ch == '\\' {
            match chars.next() {
                Some((_, 'n')) => s.push('\n'),
                Some((_, e)) => s.push(e),
                None => return Err(err(start, "unterminated string literal")),
            }
        } else {
            s.push(ch);
        }
    }
}

/// An identifier or keyword starting at `start`.
fn ident(src: &str, start: usize) -> (Tok, usize) {
    let bytes = src.as_bytes();
    let mut i = start;
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
        i += 1;
    }
    (Tok::Ident(src[start..i].to_string()), i)
}

/// An operator or punctuation starting at `i` (`&&`, `||` and `!` are spellings of
/// `and`, `or` and `not`).
fn operator(src: &str, i: usize) -> Result<(Tok, usize), ParseError> {
    let bytes = src.as_bytes();
    let two: &[u8] = if i + 1 < bytes.len() {
        &bytes[i..i + 2]
    } else {
        b""
    };
    let (tok, len) = match two {
        b"==" => (Tok::Op("=="), 2),
        b"!=" => (Tok::Op("!="), 2),
        b"<=" => (Tok::Op("<="), 2),
        b">=" => (Tok::Op(">="), 2),
        b"&&" => (Tok::Ident("and".into()), 2),
        b"||" => (Tok::Ident("or".into()), 2),
        _ => match bytes[i] {
            b'<' => (Tok::Op("<"), 1),
            b'>' => (Tok::Op(">"), 1),
            b'+' => (Tok::Op("+"), 1),
            b'-' => (Tok::Op("-"), 1),
            b'*' => (Tok::Op("*"), 1),
            b'/' => (Tok::Op("/"), 1),
            b'%' => (Tok::Op("%"), 1),
            b'!' => (Tok::Ident("not".into()), 1),
            b'.' => (Tok::Dot, 1),
            b',' => (Tok::Comma, 1),
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b'[' => (Tok::LBrack, 1),
            b']' => (Tok::RBrack, 1),
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(err(i, &format!("unexpected character '{ch}'")));
            }
        },
    };
    Ok((tok, i + len))
}

/// A token as named in error messages.
pub(super) fn tok_name(t: &Tok) -> String {
    match t {
        Tok::Int(n) => n.to_string(),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Ident(s) => s.clone(),
        Tok::Dot => "'.'".into(),
        Tok::Comma => "','".into(),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::LBrack => "'['".into(),
        Tok::RBrack => "']'".into(),
        Tok::Op(o) => format!("'{o}'"),
        Tok::End => "end".into(),
    }
}
