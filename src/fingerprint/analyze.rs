//! Deeper facts about a normalized statement: its kind, the tables it touches and the columns
//! it filters, joins and sorts on. Meant to run once per new fingerprint (the caller caches the
//! result), not per execution.
//!
//! The kind comes from the statement's leading keywords, so it never depends on whether the
//! statement parses. Tables and column uses come from `sqlparser` (PostgreSQL dialect); when it
//! cannot parse the text, the tables come from the tokens instead (a name after `FROM`, `JOIN`,
//! `INTO`, `UPDATE`, `TABLE`, …) and there are no column uses. `FOR NO KEY UPDATE` and
//! `FOR KEY SHARE`, which Django emits and sqlparser does not know, are read as `FOR UPDATE` and
//! `FOR SHARE`, which lock differently but filter the same rows.

use std::fmt;

use sqlparser::ast::{
    BinaryOperator, Expr, FromTable, InTarget, JoinConstraint, JoinOperator, ObjectName,
    OrderByKind, OrderBySort, Query, SelectItem, SetExpr, Statement, TableFactor, TableObject,
    TableWithJoins, UnaryOperator, UpdateTableFromKind,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::lexer::{next_token, Tok};
use super::normalize::next_significant;

/// Statements longer than this are not given to sqlparser (tables still come from the tokens).
pub const MAX_PARSE_LEN: usize = 64 * 1024;

/// At most this many tables and column uses are kept for one statement.
pub const MAX_ITEMS: usize = 256;

/// sqlparser's nesting limit; deeper statements fall back to the tokens. Kept well under its
/// default (50) so that a deeply nested statement cannot exhaust a 2 MiB thread stack.
const RECURSION_LIMIT: usize = 32;

/// Statements with more operators than this are not given to sqlparser either. It builds a
/// chain of operators (`a + b + c …`, `x::t::t …`, `p AND q AND …`) in a loop, without the
/// recursion its limit counts, into a tree as deep as the chain; walking that tree and dropping
/// it then recurse once per level. A 32 KiB `SELECT a+a+…` overflowed the observer's 2 MiB
/// stack and aborted the process. A tree is at most as deep as its operators are many, so
/// this bounds the depth (a 500-term `OR` of Django `Q` objects still parses).
pub const MAX_OPERATORS: usize = 2000;

/// What a statement does, as `/api/queries` reports it in `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `SELECT`, `VALUES`, `TABLE`, a `WITH … SELECT`, and `DECLARE … CURSOR FOR SELECT`.
    Select,
    Insert,
    Update,
    Delete,
    /// `CREATE`, `ALTER`, `DROP`, `TRUNCATE`, `COMMENT`, `GRANT`, `REVOKE`, `REINDEX`,
    /// `CLUSTER`, `REFRESH`, `SECURITY LABEL`.
    Ddl,
    /// `BEGIN`, `START TRANSACTION`, `COMMIT`, `END`, `ROLLBACK [TO]`, `ABORT`, `SAVEPOINT`,
    /// `RELEASE`, `PREPARE TRANSACTION`.
    Transaction,
    /// Everything else: `SET`, `SHOW`, `FETCH`, `CLOSE`, `EXPLAIN`, `COPY`, `EXECUTE`, `LOCK`,
    /// `MERGE`, …
    Other,
}

impl Kind {
    /// The name in SPEC: `select`, `insert`, `update`, `delete`, `ddl`, `transaction`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Select => "select",
            Kind::Insert => "insert",
            Kind::Update => "update",
            Kind::Delete => "delete",
            Kind::Ddl => "ddl",
            Kind::Transaction => "transaction",
            Kind::Other => "other",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a column is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Clause {
    /// `WHERE` of a SELECT, UPDATE or DELETE (also `HAVING` is not included).
    Where,
    /// A join's `ON` or `USING`.
    Join,
    OrderBy,
}

impl Clause {
    pub fn as_str(self) -> &'static str {
        match self {
            Clause::Where => "where",
            Clause::Join => "join",
            Clause::OrderBy => "order_by",
        }
    }
}

/// A column compared, joined or sorted on: what an index could serve.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ColumnUse {
    /// The table, with aliases resolved (`T3` → `shop_author`); `None` when the column is
    /// unqualified and the query reads more than one table, or belongs to a subquery's alias.
    pub table: Option<String>,
    pub column: String,
    /// `=`, `<>`, `<`, `<=`, `>`, `>=`, `IN`, `NOT IN`, `BETWEEN`, `IS NULL`, `IS NOT NULL`,
    /// `LIKE`, `ILIKE`, `= ANY`, `@>`, …; `ASC` or `DESC` for [`Clause::OrderBy`].
    pub op: String,
    pub clause: Clause,
}

/// What [`analyze`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Analysis {
    pub kind: Kind,
    /// Tables read or written, in order of appearance, without duplicates; names as PostgreSQL
    /// resolves them (unquoted, `schema.table` when qualified). CTE names are not tables.
    pub tables: Vec<String>,
    pub predicates: Vec<ColumnUse>,
    /// sqlparser understood the statement (otherwise `predicates` is empty and `tables` comes
    /// from the tokens).
    pub parsed: bool,
}

/// Kind, tables and column uses of a statement — normally normalized text, though raw SQL
/// works too.
pub fn analyze(sql: &str) -> Analysis {
    let kind = kind_of(sql);
    if sql.len() <= MAX_PARSE_LEN && !more_operators_than(sql, MAX_OPERATORS) {
        if let Some(statement) = parse(sql) {
            let mut w = Walker::default();
            w.statement(&statement);
            let dml = matches!(
                kind,
                Kind::Select | Kind::Insert | Kind::Update | Kind::Delete
            );
            let tables = if dml && !w.tables.is_empty() {
                w.tables
            } else {
                tables_from_tokens(sql)
            };
            return Analysis {
                kind,
                tables,
                predicates: w.predicates,
                parsed: true,
            };
        }
    }
    Analysis {
        kind,
        tables: tables_from_tokens(sql),
        predicates: Vec::new(),
        parsed: false,
    }
}

fn parse(sql: &str) -> Option<Statement> {
    let first = |sql: &str| {
        Parser::new(&PostgreSqlDialect {})
            .with_recursion_limit(RECURSION_LIMIT)
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_statements())
            .ok()
            .and_then(|v| v.into_iter().next())
    };
    if let Some(s) = first(sql) {
        return Some(s);
    }
    if sql.contains("FOR NO KEY UPDATE") || sql.contains("FOR KEY SHARE") {
        let sql = sql
            .replace("FOR NO KEY UPDATE", "FOR UPDATE")
            .replace("FOR KEY SHARE", "FOR SHARE");
        return first(&sql);
    }
    None
}

// ---- from tokens ---------------------------------------------------------------------------

/// Does `sql` have more than `limit` tokens that sqlparser may chain into one deeper level of
/// its tree: operators, `::`, `[` and the keywords that act as operators?
fn more_operators_than(sql: &str, limit: usize) -> bool {
    const KEYWORDS: [&str; 11] = [
        "AND", "OR", "NOT", "IS", "IN", "LIKE", "ILIKE", "SIMILAR", "BETWEEN", "COLLATE", "AT",
    ];
    let s = sql.as_bytes();
    let mut n = 0;
    let mut i = 0;
    while let Some(t) = next_significant(s, i) {
        i = t.end;
        let chains = match t.kind {
            Tok::Op | Tok::Cast | Tok::LBracket => true,
            Tok::Word => {
                let w = upper_word(s, t.start, t.end);
                KEYWORDS.iter().any(|k| is_word(&w, k))
            }
            _ => false,
        };
        if chains {
            n += 1;
            if n > limit {
                return true;
            }
        }
    }
    false
}

/// The significant words of `sql` upper-cased, for keyword tests without a keyword table.
fn upper_word(s: &[u8], start: usize, end: usize) -> [u8; 12] {
    let mut w = [0u8; 12];
    if end - start <= w.len() {
        for (d, c) in w.iter_mut().zip(&s[start..end]) {
            *d = c.to_ascii_uppercase();
        }
    }
    w
}

fn is_word(w: &[u8; 12], name: &str) -> bool {
    w.starts_with(name.as_bytes()) && !matches!(w.get(name.len()), Some(&c) if c != 0)
}

/// The statement kind from its leading keywords.
pub(crate) fn kind_of(sql: &str) -> Kind {
    let s = sql.as_bytes();
    let mut i = 0;
    let mut depth = 0u32;
    let mut with = false;
    let mut first = true;
    while let Some(t) = next_significant(s, i) {
        i = t.end;
        match t.kind {
            Tok::LParen => depth += 1,
            Tok::RParen => depth = depth.saturating_sub(1),
            Tok::Word if depth == 0 || (first && !with) => {
                let w = upper_word(s, t.start, t.end);
                let word = |name| is_word(&w, name);
                let kind = if word("SELECT") || word("VALUES") || word("TABLE") {
                    Some(Kind::Select)
                } else if word("INSERT") {
                    Some(Kind::Insert)
                } else if word("UPDATE") {
                    Some(Kind::Update)
                } else if word("DELETE") {
                    Some(Kind::Delete)
                } else if word("MERGE") {
                    Some(Kind::Other)
                } else if with {
                    None
                } else if word("WITH") {
                    with = true;
                    None
                } else if word("DECLARE") {
                    Some(Kind::Select)
                } else if [
                    "CREATE", "ALTER", "DROP", "TRUNCATE", "COMMENT", "GRANT", "REVOKE",
                ]
                .iter()
                .chain(&["REINDEX", "CLUSTER", "REFRESH", "SECURITY"])
                .any(|k| word(k))
                {
                    Some(Kind::Ddl)
                } else if [
                    "BEGIN",
                    "START",
                    "COMMIT",
                    "END",
                    "ROLLBACK",
                    "ABORT",
                    "SAVEPOINT",
                ]
                .iter()
                .chain(&["RELEASE"])
                .any(|k| word(k))
                {
                    Some(Kind::Transaction)
                } else if word("PREPARE") {
                    let next = next_significant(s, t.end);
                    let tx = next
                        .is_some_and(|n| is_word(&upper_word(s, n.start, n.end), "TRANSACTION"));
                    Some(if tx { Kind::Transaction } else { Kind::Other })
                } else {
                    Some(Kind::Other)
                };
                if let Some(k) = kind {
                    return k;
                }
                first = false;
            }
            Tok::Semicolon => break,
            _ if first && !with => return Kind::Other,
            _ => {}
        }
    }
    Kind::Other
}

/// Unquote a name token: `"Shop"` → `Shop`, `shop` → `shop` (lower-cased as PostgreSQL does).
fn name_of(s: &[u8], t: super::lexer::Token) -> String {
    let raw = &s[t.start..t.end];
    if t.kind == Tok::QuotedIdent && raw.first() == Some(&b'"') {
        let inner = &raw[1..raw.len().saturating_sub(1).max(1)];
        String::from_utf8_lossy(inner).replace("\"\"", "\"")
    } else {
        String::from_utf8_lossy(raw).to_ascii_lowercase()
    }
}

/// Tables named after `FROM`, `JOIN`, `INTO`, `UPDATE`, `TABLE`, `ON` (of `CREATE INDEX`),
/// `REFERENCES`, `TRUNCATE` and `LOCK`: for statements sqlparser cannot read, and for DDL.
pub(crate) fn tables_from_tokens(sql: &str) -> Vec<String> {
    let s = sql.as_bytes();
    let mut tables: Vec<String> = Vec::new();
    let mut i = 0;
    let mut depth = 0u32;
    // Parenthesis depths opened by EXTRACT(… FROM …), SUBSTRING(… FROM …) and the like.
    let mut ignore: Vec<u32> = Vec::new();
    let mut prev = [0u8; 12];
    let mut first_word: Option<[u8; 12]> = None;
    // Names of common table expressions (`WITH x AS (…)`): not tables.
    let mut ctes: Vec<String> = Vec::new();
    // The last significant token was `WITH`, `RECURSIVE` or a comma: a CTE's name may follow.
    let mut cte_may_follow = false;
    while i < s.len() {
        let t = next_token(s, i);
        i = t.end;
        if t.kind.is_trivia() {
            continue;
        }
        let may_follow = std::mem::take(&mut cte_may_follow);
        if may_follow
            && matches!(t.kind, Tok::Word | Tok::QuotedIdent)
            && is_cte_name(s, t.end)
            && ctes.len() < MAX_ITEMS
        {
            ctes.push(name_of(s, t));
        }
        match t.kind {
            Tok::LParen => {
                depth += 1;
                if ["EXTRACT", "SUBSTRING", "TRIM", "OVERLAY", "POSITION"]
                    .iter()
                    .any(|k| is_word(&prev, k))
                {
                    ignore.push(depth);
                }
                prev = [0; 12];
            }
            Tok::RParen => {
                if ignore.last() == Some(&depth) {
                    ignore.pop();
                }
                depth = depth.saturating_sub(1);
                prev = [0; 12];
            }
            Tok::Semicolon => {
                first_word = None;
                prev = [0; 12];
            }
            Tok::Comma => {
                cte_may_follow = true;
                prev = [0; 12];
            }
            Tok::Word => {
                let w = upper_word(s, t.start, t.end);
                cte_may_follow = is_word(&w, "WITH") || is_word(&w, "RECURSIVE");
                let first = *first_word.get_or_insert(w);
                // A cursor's name after FETCH … FROM is not a table.
                if ["FETCH", "MOVE", "CLOSE"]
                    .iter()
                    .any(|k| is_word(&first, k))
                {
                    continue;
                }
                let ignored = ignore.last() == Some(&depth);
                let names_follow = (is_word(&w, "FROM") && !is_word(&prev, "DISTINCT") && !ignored)
                    || is_word(&w, "JOIN")
                    || is_word(&w, "INTO")
                    || (is_word(&w, "UPDATE") && is_word(&first, "UPDATE"))
                    || (is_word(&w, "TABLE") && !is_word(&prev, "RETURNS"))
                    || (is_word(&w, "TRUNCATE") && is_word(&first, "TRUNCATE"))
                    || (is_word(&w, "LOCK") && is_word(&first, "LOCK"))
                    || (is_word(&w, "ON") && is_word(&first, "CREATE"))
                    || is_word(&w, "REFERENCES");
                prev = w;
                if names_follow {
                    let from = is_word(&w, "FROM") || is_word(&w, "JOIN");
                    let list = is_word(&w, "FROM") || is_word(&w, "TRUNCATE");
                    i = read_names(s, i, list, from, &mut tables);
                }
            }
            _ => prev = [0; 12],
        }
    }
    tables.retain(|t| !ctes.contains(t));
    tables
}

/// After a name at `end`: `[(columns)] AS [NOT] [MATERIALIZED] (`, which makes the name a
/// common table expression's.
fn is_cte_name(s: &[u8], end: usize) -> bool {
    let word_is = |t: &super::lexer::Token, k: &str| {
        t.kind == Tok::Word && is_word(&upper_word(s, t.start, t.end), k)
    };
    let Some(mut t) = next_significant(s, end) else {
        return false;
    };
    if t.kind == Tok::LParen {
        // A column list: names and commas only.
        loop {
            match next_significant(s, t.end) {
                Some(n) if matches!(n.kind, Tok::Word | Tok::QuotedIdent | Tok::Comma) => t = n,
                Some(n) if n.kind == Tok::RParen => break t = n,
                _ => return false,
            }
        }
        match next_significant(s, t.end) {
            Some(n) => t = n,
            None => return false,
        }
    }
    if !word_is(&t, "AS") {
        return false;
    }
    for _ in 0..3 {
        match next_significant(s, t.end) {
            Some(n) if n.kind == Tok::LParen => return true,
            Some(n) if word_is(&n, "NOT") || word_is(&n, "MATERIALIZED") => t = n,
            _ => return false,
        }
    }
    false
}

/// Read `name [alias] (, name [alias])*` (one name unless `list`) from `i`, skipping the
/// keywords that may come first (`IF NOT EXISTS`, `ONLY`, `LATERAL`, `TABLE`). After `FROM` or
/// `JOIN` (`from`), a name followed by `(` is a function, not a table; elsewhere the `(` opens
/// a column list. Returns where reading stopped.
fn read_names(s: &[u8], mut i: usize, list: bool, from: bool, tables: &mut Vec<String>) -> usize {
    loop {
        // Skip leading keywords.
        let mut t = match next_significant(s, i) {
            Some(t) => t,
            None => return s.len(),
        };
        while t.kind == Tok::Word {
            let w = upper_word(s, t.start, t.end);
            if ["IF", "NOT", "EXISTS", "ONLY", "LATERAL", "TABLE"]
                .iter()
                .any(|k| is_word(&w, k))
            {
                t = match next_significant(s, t.end) {
                    Some(t) => t,
                    None => return s.len(),
                };
            } else {
                break;
            }
        }
        if !matches!(t.kind, Tok::Word | Tok::QuotedIdent) {
            return t.start;
        }
        let mut name = name_of(s, t);
        let mut end = t.end;
        while let Some(dot) = next_significant(s, end).filter(|d| d.kind == Tok::Dot) {
            match next_significant(s, dot.end) {
                Some(p) if matches!(p.kind, Tok::Word | Tok::QuotedIdent) => {
                    name.push('.');
                    name.push_str(&name_of(s, p));
                    end = p.end;
                }
                _ => break,
            }
        }
        let after = next_significant(s, end);
        if from && after.is_some_and(|a| a.kind == Tok::LParen) {
            return end;
        }
        if !tables.contains(&name) && tables.len() < MAX_ITEMS {
            tables.push(name);
        }
        if !list {
            return end;
        }
        // Optional alias, then a comma for the next name.
        let mut next = after;
        if let Some(a) = next.filter(|a| matches!(a.kind, Tok::Word | Tok::QuotedIdent)) {
            let w = upper_word(s, a.start, a.end);
            if is_word(&w, "AS") {
                next = next_significant(s, a.end).and_then(|alias| next_significant(s, alias.end));
            } else if a.kind == Tok::QuotedIdent
                || super::keywords::lookup(&s[a.start..a.end]).is_none()
            {
                next = next_significant(s, a.end);
            }
        }
        match next {
            Some(c) if c.kind == Tok::Comma => i = c.end,
            Some(c) => return c.start,
            None => return s.len(),
        }
    }
}

// ---- from the syntax tree ------------------------------------------------------------------

#[derive(Default)]
struct Walker {
    tables: Vec<String>,
    predicates: Vec<ColumnUse>,
    ctes: Vec<String>,
    /// (name or alias in scope, the table it stands for: `None` for a subquery or CTE).
    scope: Vec<(String, Option<String>)>,
}

fn object_name(name: &ObjectName) -> String {
    let mut out = String::new();
    for part in &name.0 {
        if let Some(ident) = part.as_ident() {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&ident.value);
        }
    }
    out
}

fn join_constraint(op: &JoinOperator) -> Option<&JoinConstraint> {
    match op {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::CrossJoin(c)
        | JoinOperator::Semi(c)
        | JoinOperator::LeftSemi(c)
        | JoinOperator::RightSemi(c)
        | JoinOperator::Anti(c)
        | JoinOperator::LeftAnti(c)
        | JoinOperator::RightAnti(c)
        | JoinOperator::StraightJoin(c) => Some(c),
        JoinOperator::AsOf { constraint, .. } => Some(constraint),
        _ => None,
    }
}

fn comparison(op: &BinaryOperator) -> Option<String> {
    let text = op.to_string();
    const OPS: &[&str] = &[
        "=", "<>", "!=", "<", "<=", ">", ">=", "~", "~*", "!~", "!~*", "~~", "~~*", "!~~", "!~~*",
        "@>", "<@", "?", "?|", "?&", "&&", "@@",
    ];
    OPS.contains(&text.as_str()).then_some(text)
}

impl Walker {
    fn add_table(&mut self, name: String) {
        if !self.tables.contains(&name) && self.tables.len() < MAX_ITEMS {
            self.tables.push(name);
        }
    }

    fn statement(&mut self, statement: &Statement) {
        match statement {
            Statement::Query(q) => self.query(q),
            Statement::Insert(insert) => {
                if let TableObject::TableName(name) = &insert.table {
                    self.add_table(object_name(name));
                }
                if let Some(source) = &insert.source {
                    self.query(source);
                }
            }
            Statement::Update(update) => {
                let mark = self.scope.len();
                self.relations(&update.table);
                if let Some(
                    UpdateTableFromKind::BeforeSet(from) | UpdateTableFromKind::AfterSet(from),
                ) = &update.from
                {
                    for t in from {
                        self.relations(t);
                    }
                }
                self.joins(&update.table, mark);
                if let Some(selection) = &update.selection {
                    self.expr(selection, Some(Clause::Where), mark);
                }
                self.scope.truncate(mark);
            }
            Statement::Delete(delete) => {
                let mark = self.scope.len();
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) =
                    &delete.from;
                for t in from.iter().chain(delete.using.iter().flatten()) {
                    self.relations(t);
                }
                for t in from.iter().chain(delete.using.iter().flatten()) {
                    self.joins(t, mark);
                }
                if let Some(selection) = &delete.selection {
                    self.expr(selection, Some(Clause::Where), mark);
                }
                self.scope.truncate(mark);
            }
            Statement::Declare { stmts, .. } => {
                for d in stmts {
                    if let Some(q) = &d.for_query {
                        self.query(q);
                    }
                }
            }
            Statement::Explain { statement, .. } => self.statement(statement),
            _ => {}
        }
    }

    fn query(&mut self, q: &Query) {
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.ctes.push(cte.alias.name.value.clone());
                self.query(&cte.query);
            }
        }
        let mark = self.scope.len();
        self.set_expr(&q.body);
        if let Some(order_by) = &q.order_by {
            if let OrderByKind::Expressions(exprs) = &order_by.kind {
                for e in exprs {
                    let op = match e.options.sort {
                        Some(OrderBySort::Desc) => "DESC",
                        _ => "ASC",
                    };
                    self.column_use(&e.expr, op, Clause::OrderBy, mark);
                }
            }
        }
        self.scope.truncate(mark);
    }

    /// Leaves the scope of a plain SELECT on the stack, for the enclosing ORDER BY.
    fn set_expr(&mut self, body: &SetExpr) {
        match body {
            SetExpr::Select(select) => {
                let mark = self.scope.len();
                for t in &select.from {
                    self.relations(t);
                }
                for t in &select.from {
                    self.joins(t, mark);
                }
                for item in &select.projection {
                    if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } =
                        item
                    {
                        self.expr(e, None, mark);
                    }
                }
                if let Some(selection) = &select.selection {
                    self.expr(selection, Some(Clause::Where), mark);
                }
                if let Some(having) = &select.having {
                    self.expr(having, None, mark);
                }
            }
            SetExpr::Query(q) => self.query(q),
            SetExpr::SetOperation { left, right, .. } => {
                let mark = self.scope.len();
                self.set_expr(left);
                self.scope.truncate(mark);
                self.set_expr(right);
                self.scope.truncate(mark);
            }
            SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) => self.statement(s),
            SetExpr::Table(t) => {
                if let Some(name) = &t.table_name {
                    let name = match &t.schema_name {
                        Some(schema) => format!("{}.{}", schema.value, name.value),
                        None => name.value.clone(),
                    };
                    self.add_table(name);
                }
            }
            _ => {}
        }
    }

    /// Put the tables of `FROM a JOIN b …` in scope (and in `tables`).
    fn relations(&mut self, t: &TableWithJoins) {
        self.relation(&t.relation);
        for j in &t.joins {
            self.relation(&j.relation);
        }
    }

    fn relation(&mut self, factor: &TableFactor) {
        match factor {
            TableFactor::Table { name, alias, .. } => {
                let full = object_name(name);
                let cte = name.0.len() == 1 && self.ctes.contains(&full);
                let key = match alias {
                    Some(a) => a.name.value.clone(),
                    None => name
                        .0
                        .last()
                        .and_then(|p| p.as_ident())
                        .map(|i| i.value.clone())
                        .unwrap_or_default(),
                };
                if cte {
                    self.scope.push((key, None));
                } else {
                    self.add_table(full.clone());
                    self.scope.push((key, Some(full)));
                }
            }
            TableFactor::Derived {
                subquery, alias, ..
            } => {
                self.query(subquery);
                if let Some(a) = alias {
                    self.scope.push((a.name.value.clone(), None));
                }
            }
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => self.relations(table_with_joins),
            _ => {}
        }
    }

    /// The join conditions of `FROM a JOIN b ON …`, with everything in `FROM` in scope.
    fn joins(&mut self, t: &TableWithJoins, mark: usize) {
        if let TableFactor::NestedJoin {
            table_with_joins, ..
        } = &t.relation
        {
            self.joins(table_with_joins, mark);
        }
        for j in &t.joins {
            if let TableFactor::NestedJoin {
                table_with_joins, ..
            } = &j.relation
            {
                self.joins(table_with_joins, mark);
            }
            match join_constraint(&j.join_operator) {
                Some(JoinConstraint::On(e)) => self.expr(e, Some(Clause::Join), mark),
                Some(JoinConstraint::Using(columns)) => {
                    for c in columns {
                        if let Some(ident) = c.0.last().and_then(|p| p.as_ident()) {
                            self.push_use(None, ident.value.clone(), "=", Clause::Join);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Walk an expression: record column uses when `clause` is given, and always visit the
    /// subqueries inside for their tables.
    fn expr(&mut self, e: &Expr, clause: Option<Clause>, mark: usize) {
        let record = |w: &mut Self, col: &Expr, op: &str| {
            if let Some(c) = clause {
                w.column_use(col, op, c, mark);
            }
        };
        match e {
            Expr::BinaryOp { left, op, right } => match op {
                BinaryOperator::And | BinaryOperator::Or => {
                    self.expr(left, clause, mark);
                    self.expr(right, clause, mark);
                }
                _ => {
                    if let Some(text) = comparison(op) {
                        record(self, left, &text);
                        record(self, right, &text);
                    }
                    self.expr(left, None, mark);
                    self.expr(right, None, mark);
                }
            },
            Expr::Nested(inner) => self.expr(inner, clause, mark),
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr,
            } => self.expr(expr, clause, mark),
            Expr::In {
                expr,
                target,
                negated,
                ..
            } => {
                record(self, expr, if *negated { "NOT IN" } else { "IN" });
                match target {
                    InTarget::Subquery(q) => self.query(q),
                    InTarget::List(list) => {
                        for x in list {
                            self.expr(x, None, mark);
                        }
                    }
                    _ => {}
                }
            }
            Expr::Between { expr, negated, .. } => {
                record(self, expr, if *negated { "NOT BETWEEN" } else { "BETWEEN" })
            }
            Expr::IsNull(x) => record(self, x, "IS NULL"),
            Expr::IsNotNull(x) => record(self, x, "IS NOT NULL"),
            Expr::IsTrue(x) => record(self, x, "IS TRUE"),
            Expr::IsNotTrue(x) => record(self, x, "IS NOT TRUE"),
            Expr::IsFalse(x) => record(self, x, "IS FALSE"),
            Expr::IsNotFalse(x) => record(self, x, "IS NOT FALSE"),
            Expr::IsDistinctFrom(a, b) => {
                record(self, a, "IS DISTINCT FROM");
                record(self, b, "IS DISTINCT FROM");
            }
            Expr::IsNotDistinctFrom(a, b) => {
                record(self, a, "IS NOT DISTINCT FROM");
                record(self, b, "IS NOT DISTINCT FROM");
            }
            Expr::Like { negated, expr, .. } => {
                record(self, expr, if *negated { "NOT LIKE" } else { "LIKE" })
            }
            Expr::ILike { negated, expr, .. } => {
                record(self, expr, if *negated { "NOT ILIKE" } else { "ILIKE" })
            }
            Expr::AnyOp {
                left,
                compare_op,
                right,
                ..
            } => {
                record(self, left, &format!("{compare_op} ANY"));
                self.expr(right, None, mark);
            }
            Expr::AllOp {
                left,
                compare_op,
                right,
            } => {
                record(self, left, &format!("{compare_op} ALL"));
                self.expr(right, None, mark);
            }
            Expr::Exists { subquery, .. } => self.query(subquery),
            Expr::Subquery(q) => self.query(q),
            Expr::Cast { expr, .. } => self.expr(expr, None, mark),
            _ => {}
        }
    }

    fn column_use(&mut self, e: &Expr, op: &str, clause: Clause, mark: usize) {
        if let Some((table, column)) = self.column(e, mark) {
            self.push_use(table, column, op, clause);
        }
    }

    fn push_use(&mut self, table: Option<String>, column: String, op: &str, clause: Clause) {
        let u = ColumnUse {
            table,
            column,
            op: op.to_string(),
            clause,
        };
        if !self.predicates.contains(&u) && self.predicates.len() < MAX_ITEMS {
            self.predicates.push(u);
        }
    }

    /// `col`, `t.col`, `schema.t.col`: the column and the table it belongs to.
    fn column(&self, e: &Expr, mark: usize) -> Option<(Option<String>, String)> {
        match e {
            Expr::Identifier(ident) => {
                let local = &self.scope[mark.min(self.scope.len())..];
                let table = match local {
                    [(_, table)] => table.clone(),
                    _ => None,
                };
                Some((table, ident.value.clone()))
            }
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let column = parts[parts.len() - 1].value.clone();
                let qualifier = &parts[parts.len() - 2].value;
                let table = if parts.len() == 2 {
                    match self.scope.iter().rev().find(|(k, _)| k == qualifier) {
                        Some((_, table)) => table.clone(),
                        None => Some(qualifier.clone()),
                    }
                } else {
                    let names: Vec<&str> = parts[..parts.len() - 1]
                        .iter()
                        .map(|p| p.value.as_str())
                        .collect();
                    Some(names.join("."))
                };
                Some((table, column))
            }
            Expr::Nested(inner) => self.column(inner, mark),
            _ => None,
        }
    }
}
