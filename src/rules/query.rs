//! The query language of `query = "..."` rules, parsed into a syntax tree.
//!
//! ```text
//! query   := or
//! or      := and ("OR" and)*
//! and     := near (["AND"] near)*          adjacent terms mean AND
//! near    := unary ("NEAR/" n unary)*
//! unary   := "NOT" unary | "-" unary | field? atom
//! atom    := "(" or ")" | word | word* | "phrase" | /regex/ | @list
//! field   := title: | summary: | content: | author: | category: | link:
//! ```
//!
//! Operators are upper case; `and`, `or` and `not` in lower case are ordinary words.

use std::fmt;

use crate::model::Field;

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ast {
    /// A word or a phrase, matched whole.
    Literal(String),
    /// `stem*`: a word starting with the stem.
    Prefix(String),
    /// `/pattern/`: a regular expression over the original text.
    Regex(String),
    /// `@name`: any term of a `[lists]` entry.
    List {
        name: String,
        column: usize,
    },
    /// `field:expr`: `expr` looked for only in that field.
    Field(Field, Box<Ast>),
    /// Both sides within `distance` words of each other.
    Near {
        left: Box<Ast>,
        right: Box<Ast>,
        distance: u32,
        column: usize,
    },
    And(Vec<Ast>),
    Or(Vec<Ast>),
    Not(Box<Ast>),
}

/// Where a query stopped making sense, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct QueryError {
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    Minus,
    Near(u32),
    Field(Field),
    Word(String),
    Prefix(String),
    Phrase(String),
    Regex(String),
    List(String),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Open => f.write_str("\"(\""),
            Token::Close => f.write_str("\")\""),
            Token::And => f.write_str("AND"),
            Token::Or => f.write_str("OR"),
            Token::Not => f.write_str("NOT"),
            Token::Minus => f.write_str("\"-\""),
            Token::Near(n) => write!(f, "NEAR/{n}"),
            Token::Field(field) => write!(f, "{}:", field.name()),
            Token::Word(w) | Token::Prefix(w) => write!(f, "{w:?}"),
            Token::Phrase(p) => write!(f, "\"{p}\""),
            Token::Regex(r) => write!(f, "/{r}/"),
            Token::List(l) => write!(f, "@{l}"),
        }
    }
}

/// Parses a query; the error gives the column and what was expected there.
pub fn parse(query: &str) -> Result<Ast, QueryError> {
    let tokens = lex(query)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        end_column: query.chars().count() + 1,
    };
    if parser.tokens.is_empty() {
        return Err(QueryError {
            column: 1,
            message: "the query is empty; expected a word, a \"phrase\", /regex/ or @list".into(),
        });
    }
    let ast = parser.or()?;
    match parser.peek() {
        None => Ok(ast),
        Some((Token::Close, column)) => Err(QueryError {
            column,
            message: "unmatched \")\"".into(),
        }),
        Some((token, column)) => Err(QueryError {
            column,
            message: format!("unexpected {token}"),
        }),
    }
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    pos: usize,
    end_column: usize,
}

impl Parser {
    fn peek(&self) -> Option<(Token, usize)> {
        self.tokens.get(self.pos).cloned()
    }

    fn next(&mut self) -> Option<(Token, usize)> {
        let token = self.peek();
        self.pos += usize::from(token.is_some());
        token
    }

    fn column(&self) -> usize {
        self.peek().map_or(self.end_column, |(_, c)| c)
    }

    fn or(&mut self) -> Result<Ast, QueryError> {
        let mut alternatives = vec![self.and()?];
        while let Some((Token::Or, _)) = self.peek() {
            self.next();
            alternatives.push(self.and()?);
        }
        Ok(collapse(alternatives, Ast::Or))
    }

    fn and(&mut self) -> Result<Ast, QueryError> {
        let mut all = vec![self.near()?];
        loop {
            match self.peek() {
                None | Some((Token::Or | Token::Close, _)) => break,
                Some((Token::And, _)) => {
                    self.next();
                    all.push(self.near()?);
                }
                Some(_) => all.push(self.near()?),
            }
        }
        Ok(collapse(all, Ast::And))
    }

    fn near(&mut self) -> Result<Ast, QueryError> {
        let mut left = self.unary()?;
        while let Some((Token::Near(distance), column)) = self.peek() {
            self.next();
            let right = self.unary()?;
            left = Ast::Near {
                left: Box::new(left),
                right: Box::new(right),
                distance,
                column,
            };
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Ast, QueryError> {
        match self.peek() {
            Some((Token::Not | Token::Minus, _)) => {
                self.next();
                Ok(Ast::Not(Box::new(self.unary()?)))
            }
            Some((Token::Field(field), _)) => {
                self.next();
                Ok(Ast::Field(field, Box::new(self.atom()?)))
            }
            _ => self.atom(),
        }
    }

    fn atom(&mut self) -> Result<Ast, QueryError> {
        let column = self.column();
        let expected = "expected a word, a \"phrase\", /regex/, @list or \"(\"";
        match self.next() {
            Some((Token::Open, _)) => {
                let inner = self.or()?;
                match self.next() {
                    Some((Token::Close, _)) => Ok(inner),
                    _ => Err(QueryError {
                        column: self.end_column.min(self.column()),
                        message: format!("expected \")\" to close the \"(\" at column {column}"),
                    }),
                }
            }
            Some((Token::Word(w) | Token::Phrase(w), _)) => Ok(Ast::Literal(w)),
            Some((Token::Prefix(stem), _)) => Ok(Ast::Prefix(stem)),
            Some((Token::Regex(r), _)) => Ok(Ast::Regex(r)),
            Some((Token::List(name), _)) => Ok(Ast::List { name, column }),
            None => Err(QueryError {
                column,
                message: format!("the query ends too early; {expected}"),
            }),
            Some((token, _)) => Err(QueryError {
                column,
                message: format!("{expected}, found {token}"),
            }),
        }
    }
}

fn collapse(mut items: Vec<Ast>, join: fn(Vec<Ast>) -> Ast) -> Ast {
    if items.len() == 1 {
        items.remove(0)
    } else {
        join(items)
    }
}

/// Characters that end a bare word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"')
}

fn lex(query: &str) -> Result<Vec<(Token, usize)>, QueryError> {
    let chars: Vec<char> = query.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let err = |message: String| QueryError { column, message };
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let (token, len) = match c {
            '(' => (Token::Open, 1),
            ')' => (Token::Close, 1),
            '"' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '"')
                    .ok_or_else(|| err("this \" opens a phrase that is never closed".into()))?;
                let phrase: String = chars[i + 1..i + 1 + close].iter().collect();
                if phrase.trim().is_empty() {
                    return Err(err("empty phrase \"\"".into()));
                }
                (Token::Phrase(phrase), close + 2)
            }
            '/' => {
                let mut pattern = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => {
                            return Err(err("this / opens a regex that is never closed".into()));
                        }
                        Some('\\') if chars.get(j + 1) == Some(&'/') => {
                            pattern.push('/');
                            j += 2;
                        }
                        Some('/') => break,
                        Some(&c) => {
                            pattern.push(c);
                            j += 1;
                        }
                    }
                }
                if pattern.is_empty() {
                    return Err(err("empty regex //".into()));
                }
                (Token::Regex(pattern), j + 1 - i)
            }
            '-' if chars
                .get(i + 1)
                .is_some_and(|&n| !ends_word(n) || n == '(' || n == '"') =>
            {
                (Token::Minus, 1)
            }
            '@' => {
                let len = chars[i + 1..]
                    .iter()
                    .take_while(|&&c| c.is_alphanumeric() || c == '_' || c == '-')
                    .count();
                if len == 0 {
                    return Err(err("expected a list name after @".into()));
                }
                (
                    Token::List(chars[i + 1..i + 1 + len].iter().collect()),
                    len + 1,
                )
            }
            _ => {
                let len = chars[i..].iter().take_while(|&&c| !ends_word(c)).count();
                let word: String = chars[i..i + len].iter().collect();
                if let Some((name, rest)) = word.split_once(':')
                    && !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphabetic())
                {
                    let field = field_named(name).ok_or_else(|| {
                        err(format!(
                            "unknown field \"{name}:\"; expected title, summary, content, author, category or link (quote a word that holds a colon)"
                        ))
                    })?;
                    // The field applies to what follows the colon, lexed on its own.
                    let field_len = name.chars().count() + 1;
                    tokens.push((Token::Field(field), column));
                    if rest.is_empty() && chars.get(i + field_len).is_none_or(|c| c.is_whitespace())
                    {
                        return Err(QueryError {
                            column: column + field_len,
                            message: format!("expected a term after \"{name}:\""),
                        });
                    }
                    i += field_len;
                    continue;
                }
                (word_token(&word, column)?, len)
            }
        };
        tokens.push((token, column));
        i += len;
    }
    Ok(tokens)
}

fn word_token(word: &str, column: usize) -> Result<Token, QueryError> {
    Ok(match word {
        "AND" => Token::And,
        "OR" => Token::Or,
        "NOT" => Token::Not,
        _ => {
            if let Some(n) = word.strip_prefix("NEAR/") {
                let distance = n.parse().map_err(|_| QueryError {
                    column,
                    message: format!("expected a number of words after NEAR/, found {n:?}"),
                })?;
                Token::Near(distance)
            } else if let Some(stem) = word.strip_suffix('*') {
                if !stem.chars().any(char::is_alphanumeric) {
                    return Err(QueryError {
                        column,
                        message: "a prefix needs letters before the *".into(),
                    });
                }
                Token::Prefix(stem.to_owned())
            } else {
                Token::Word(word.to_owned())
            }
        }
    })
}

fn field_named(name: &str) -> Option<Field> {
    Field::EVERY.into_iter().find(|f| f.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Ast {
        Ast::Literal(s.into())
    }

    #[test]
    fn precedence_and_adjacency() {
        assert_eq!(
            parse("a b OR c").expect("parses"),
            Ast::Or(vec![Ast::And(vec![lit("a"), lit("b")]), lit("c")])
        );
        assert_eq!(
            parse("a AND (b OR c) -d").expect("parses"),
            Ast::And(vec![
                lit("a"),
                Ast::Or(vec![lit("b"), lit("c")]),
                Ast::Not(Box::new(lit("d")))
            ])
        );
        assert_eq!(
            parse("NOT a and b").expect("parses"),
            Ast::And(vec![Ast::Not(Box::new(lit("a"))), lit("and"), lit("b")])
        );
    }

    #[test]
    fn terms_of_every_kind() {
        assert_eq!(
            parse(r#""Sergei Lavrov" sanction* /\bS-?400s?\b/ @officials"#).expect("parses"),
            Ast::And(vec![
                lit("Sergei Lavrov"),
                Ast::Prefix("sanction".into()),
                Ast::Regex(r"\bS-?400s?\b".into()),
                Ast::List {
                    name: "officials".into(),
                    column: 42
                },
            ])
        );
        assert_eq!(parse(r"/a\/b/").expect("parses"), Ast::Regex("a/b".into()));
        assert_eq!(
            parse("S-400 -x").expect("parses"),
            Ast::And(vec![lit("S-400"), Ast::Not(Box::new(lit("x")))])
        );
    }

    #[test]
    fn fields_and_near() {
        assert_eq!(
            parse("title:(NATO OR OTAN)").expect("parses"),
            Ast::Field(
                Field::Title,
                Box::new(Ast::Or(vec![lit("NATO"), lit("OTAN")]))
            )
        );
        assert_eq!(
            parse("Blinken NEAR/5 Lavrov").expect("parses"),
            Ast::Near {
                left: Box::new(lit("Blinken")),
                right: Box::new(lit("Lavrov")),
                distance: 5,
                column: 9
            }
        );
        assert_eq!(
            parse("link:\"example.org\"").expect("parses"),
            Ast::Field(Field::Link, Box::new(lit("example.org")))
        );
    }

    /// One row per broken query: the query, the column and the start of the message.
    #[test]
    fn errors_point_at_the_column() {
        let rows: &[(&str, usize, &str)] = &[
            ("", 1, "the query is empty"),
            ("Lavrov AND", 11, "the query ends too early"),
            (
                "(Lavrov OR NATO",
                16,
                "expected \")\" to close the \"(\" at column 1",
            ),
            ("Lavrov)", 7, "unmatched \")\""),
            (
                "\"Sergei Lavrov",
                1,
                "this \" opens a phrase that is never closed",
            ),
            ("/S-400", 1, "this / opens a regex that is never closed"),
            ("headline:NATO", 1, "unknown field \"headline:\""),
            ("title: NATO", 7, "expected a term after \"title:\""),
            ("a NEAR/x b", 3, "expected a number of words after NEAR/"),
            (
                "a OR OR b",
                6,
                "expected a word, a \"phrase\", /regex/, @list or \"(\", found OR",
            ),
            ("@", 1, "expected a list name after @"),
            ("*", 1, "a prefix needs letters before the *"),
        ];
        for (query, column, message) in rows {
            let err = parse(query).expect_err(query);
            assert_eq!(err.column, *column, "{query:?}: {err}");
            assert!(err.message.starts_with(message), "{query:?}: {err}");
        }
    }
}
