//! The recursive-descent parser (grammar in the module doc of [`super`]).

use super::ast::{BinOp, Expr, Path};
use super::lex::{ParseError, Tok, lex, tok_name};
use super::value::Value;

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 64;

impl Parser {
    fn peek(&self) -> &Tok {
        self.toks.get(self.pos).map_or(&Tok::End, |t| &t.1)
    }
    fn peek2(&self) -> &Tok {
        self.toks.get(self.pos + 1).map_or(&Tok::End, |t| &t.1)
    }
    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(0, |t| t.0)
    }
    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            offset: self.offset(),
            message: message.into(),
        })
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == kw)
    }
    fn expect(&mut self, t: Tok, what: &str) -> Result<(), ParseError> {
        if *self.peek() == t {
            self.pos += 1;
            Ok(())
        } else {
            self.err(format!("expected {what}"))
        }
    }
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.err("expression nested too deeply")
        } else {
            Ok(())
        }
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let mut lhs = self.and()?;
        while self.is_kw("or") {
            self.pos += 1;
            let rhs = self.and()?;
            lhs = Expr::Bin(BinOp::Or, Box::new(lhs), Box::new(rhs));
        }
        self.depth -= 1;
        Ok(lhs)
    }
    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.not()?;
        while self.is_kw("and") {
            self.pos += 1;
            let rhs = self.not()?;
            lhs = Expr::Bin(BinOp::And, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }
    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.is_kw("not") {
            self.pos += 1;
            self.enter()?;
            let e = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<Expr, ParseError> {
        let lhs = self.sum()?;
        let op = match self.peek() {
            Tok::Op("==") => BinOp::Eq,
            Tok::Op("!=") => BinOp::Ne,
            Tok::Op("<") => BinOp::Lt,
            Tok::Op("<=") => BinOp::Le,
            Tok::Op(">") => BinOp::Gt,
            Tok::Op(">=") => BinOp::Ge,
            Tok::Ident(s) if s == "in" => BinOp::In,
            Tok::Ident(s) if s == "not" && matches!(self.peek2(), Tok::Ident(t) if t == "in") => {
                self.pos += 1;
                BinOp::NotIn
            }
            _ => return Ok(lhs),
        };
        self.pos += 1;
        let rhs = self.sum()?;
        Ok(Expr::Bin(op, Box::new(lhs), Box::new(rhs)))
    }
    fn sum(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.product()?;
        loop {
            let op = match self.peek() {
                Tok::Op("+") => BinOp::Add,
                Tok::Op("-") => BinOp::Sub,
                _ => return Ok(lhs),
            };
            self.pos += 1;
            let rhs = self.product()?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
    }
    fn product(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Op("*") => BinOp::Mul,
                Tok::Op("/") => BinOp::Div,
                Tok::Op("%") => BinOp::Rem,
                _ => return Ok(lhs),
            };
            self.pos += 1;
            let rhs = self.unary()?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
    }
    fn unary(&mut self) -> Result<Expr, ParseError> {
        if *self.peek() == Tok::Op("-") {
            self.pos += 1;
            // Fold `-INT` into a literal so that i64::MIN is expressible.
            if let Tok::Int(_) = self.peek()
                && !matches!(self.peek2(), Tok::Dot)
            {
                let off = self.offset();
                if let Tok::Int(n) = self.bump() {
                    return n
                        .checked_neg()
                        .map(|v| Expr::Lit(Value::Int(v)))
                        .ok_or(ParseError {
                            offset: off,
                            message: "integer literal out of range".into(),
                        });
                }
            }
            self.enter()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Neg(Box::new(e)));
        }
        self.atom()
    }
    fn atom(&mut self) -> Result<Expr, ParseError> {
        let off = self.offset();
        match self.bump() {
            Tok::Int(n) => Ok(Expr::Lit(Value::Int(n))),
            Tok::Str(s) => Ok(Expr::Lit(Value::Str(s))),
            Tok::LParen => {
                let e = self.expr()?;
                self.expect(Tok::RParen, "')'")?;
                Ok(e)
            }
            Tok::LBrack => {
                let mut items = Vec::new();
                if *self.peek() != Tok::RBrack {
                    loop {
                        items.push(self.expr()?);
                        if *self.peek() == Tok::Comma {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                }
                self.expect(Tok::RBrack, "']' or ','")?;
                Ok(Expr::List(items))
            }
            Tok::Ident(id) => match id.as_str() {
                "true" => Ok(Expr::Lit(Value::Bool(true))),
                "false" => Ok(Expr::Lit(Value::Bool(false))),
                "random" => {
                    self.expect(Tok::LParen, "'(' after random")?;
                    let a = self.expr()?;
                    self.expect(Tok::Comma, "','")?;
                    let b = self.expr()?;
                    self.expect(Tok::RParen, "')'")?;
                    Ok(Expr::Random(Box::new(a), Box::new(b)))
                }
                "and" | "or" | "not" | "in" => Err(ParseError {
                    offset: off,
                    message: format!("unexpected keyword '{id}'"),
                }),
                _ => {
                    let mut segs = vec![id];
                    while *self.peek() == Tok::Dot {
                        self.pos += 1;
                        match self.bump() {
                            Tok::Ident(s) => segs.push(s),
                            _ => {
                                self.pos -= 1;
                                return self.err("expected a name after '.'");
                            }
                        }
                    }
                    path_from(&segs)
                        .map(Expr::Path)
                        .map_err(|message| ParseError {
                            offset: off,
                            message,
                        })
                }
            },
            Tok::End => Err(ParseError {
                offset: off,
                message: "unexpected end of expression".into(),
            }),
            t => Err(ParseError {
                offset: off,
                message: format!("unexpected token {}", tok_name(&t)),
            }),
        }
    }
}

fn path_from(segs: &[String]) -> Result<Path, String> {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let own = |x: &str| x.to_string();
    Ok(match s.as_slice() {
        ["var", n] => Path::Var(own(n)),
        ["arg", n] => Path::Arg(own(n)),
        ["stat", st, e, a] => Path::Stat {
            stat: own(st),
            entity: own(e),
            axis: own(a),
        },
        ["tier", st, e, a] => Path::Tier {
            stat: own(st),
            entity: own(e),
            axis: own(a),
        },
        ["level", st, e, a] => Path::StatLevel {
            stat: own(st),
            entity: own(e),
            axis: own(a),
        },
        ["rel", n, a] => Path::Rel {
            npc: own(n),
            axis: own(a),
        },
        ["item", i] => Path::Item(own(i)),
        ["inventory"] => Path::Inventory,
        ["quest", q] => Path::Quest(own(q)),
        ["quest", q, o] => Path::Objective {
            quest: own(q),
            objective: own(o),
        },
        ["visits", sc] => Path::SceneVisits(own(sc)),
        ["visits", sc, n] => Path::NodeVisits {
            scene: own(sc),
            node: own(n),
        },
        ["unlocked", sc] => Path::Unlocked(own(sc)),
        ["time"] => Path::Time,
        ["xp"] => Path::Xp,
        ["level"] => Path::Level,
        _ => {
            return Err(format!(
                "unknown reference '{}' (expected var.X, arg.X, stat.S.E.A, tier.S.E.A, level.S.E.A, rel.NPC.AXIS, item.X, inventory, quest.Q[.O], visits.S[.N], unlocked.S, time, xp or level)",
                s.join(".")
            ));
        }
    })
}

/// Parses an expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.expr()?;
    if *p.peek() != Tok::End {
        return p.err(format!(
            "unexpected {} after expression",
            tok_name(p.peek())
        ));
    }
    Ok(e)
}
