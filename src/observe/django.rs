//! Django names from database names, and the advice that names them.
//!
//! Django's default naming is the only schema knowledge pgscope has: a model `Book` of the app
//! `library` lives in the table `library_book`; its foreign key `author` is the column
//! `author_id`; a many-to-many field `tags` has the through table `library_book_tags`; the
//! reverse accessor of a foreign key is `<model>_set`. Names derived from these rules are exact
//! for default tables; where a rule had to guess (a table name with no app prefix, an app
//! label that could end at more than one underscore, a foreign key column whose name matches
//! no table), the advice says so.

use std::fmt::Write;

/// A model derived from a table name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    pub app_label: Option<String>,
    /// `Book` from `library_book` (Django lower-cases model names in table names, so word
    /// boundaries inside the name are lost: `library_bookcopy` gives `Bookcopy`).
    pub name: String,
    pub guessed: bool,
}

/// The model of `table`. `sibling` is another table of the same query or finding, used to
/// tell where the app label ends (`my_app_book` next to `my_app_loan` → app `my_app`).
pub fn model_of(table: &str, sibling: Option<&str>) -> Model {
    let table = table.rsplit('.').next().unwrap_or(table); // drop a schema
    if let Some(other) = sibling {
        let common = common_prefix_at_underscore(table, other);
        if !common.is_empty() && common.len() < table.len() {
            return Model {
                app_label: Some(common.trim_end_matches('_').to_owned()),
                name: camel(&table[common.len()..]),
                guessed: false,
            };
        }
    }
    match table.split_once('_') {
        Some((app, rest)) if !rest.is_empty() => Model {
            app_label: Some(app.to_owned()),
            name: camel(rest),
            // `a_b_c` could be app `a` with model `b_c`, or app `a_b` with model `c`.
            guessed: rest.contains('_'),
        },
        _ => Model {
            app_label: None,
            name: camel(table),
            guessed: true,
        },
    }
}

/// The longest prefix of `a` ending in `_` that `b` shares.
fn common_prefix_at_underscore<'a>(a: &'a str, b: &str) -> &'a str {
    let mut end = 0;
    for ((i, ca), cb) in a.char_indices().zip(b.chars()) {
        if ca != cb {
            break;
        }
        if ca == '_' {
            end = i + 1;
        }
    }
    &a[..end]
}

/// `book` → `Book`, `book_copy` → `BookCopy`.
fn camel(s: &str) -> String {
    s.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

/// Does `table` look like the table of the model whose lower-case name is `model`?
pub fn table_is_model(table: &str, model: &str) -> bool {
    let table = table.rsplit('.').next().unwrap_or(table);
    table == model || table.ends_with(&format!("_{model}"))
}

/// Which Django tool fixes a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Orm {
    SelectRelated,
    PrefetchRelated,
    Cache,
}

impl Orm {
    pub fn as_str(self) -> &'static str {
        match self {
            Orm::SelectRelated => "select_related",
            Orm::PrefetchRelated => "prefetch_related",
            Orm::Cache => "cache",
        }
    }
}

/// The advice for one finding (SPEC's `suggestion`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggestion {
    pub orm: Option<Orm>,
    /// The model whose queryset to change (the parent's), or the child's for `cache`.
    pub model: Option<String>,
    /// The relation path to pass (`book`, `member__branch`, `tags`, `book_set`).
    pub field: Option<String>,
    pub text: String,
}

/// How a child query hangs off its parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation {
    pub orm: Orm,
    /// The relation path from the parent's model.
    pub path: String,
    /// Some name in the path was guessed.
    pub guessed: bool,
}

/// Advice for an N+1 burst of `burst` child queries under `parent_table`'s rows.
pub fn n_plus_one_advice(
    parent_table: &str,
    child_table: &str,
    relation: &Relation,
    burst: u64,
) -> Suggestion {
    let parent = model_of(parent_table, Some(child_table));
    let child = model_of(child_table, Some(parent_table));
    let var = parent.name.to_lowercase();
    let path = &relation.path;
    let mut text = String::new();
    let access = path.replace("__", ".");
    match relation.orm {
        Orm::SelectRelated => {
            let _ = write!(
                text,
                "The view loads {} rows and then reads `{var}.{access}` for each of them, one \
                 query per row ({burst} queries for one `{}` each). Add \
                 `.select_related(\"{path}\")` to the `{}` queryset the view iterates (e.g. \
                 `{}.objects.select_related(\"{path}\")`) so Django fetches them in the same \
                 query with a JOIN.",
                parent.name, child.name, parent.name, parent.name
            );
        }
        Orm::PrefetchRelated => {
            let _ = write!(
                text,
                "The view loads {} rows and then reads `{var}.{access}` for each of them, one \
                 query per row ({burst} queries on `{}`). Add \
                 `.prefetch_related(\"{path}\")` to the `{}` queryset the view iterates (e.g. \
                 `{}.objects.prefetch_related(\"{path}\")`): Django then loads them all in one \
                 extra query with `IN (…)` instead of one per {var}.",
                parent.name, child.name, parent.name, parent.name
            );
        }
        Orm::Cache => {}
    }
    if relation.guessed || parent.guessed || child.guessed {
        text.push_str(
            " Model and field names are guessed from the table and column names (Django's \
             default naming); check them against your models.",
        );
    }
    Suggestion {
        orm: Some(relation.orm),
        model: Some(parent.name),
        field: Some(path.clone()),
        text,
    }
}

/// Advice for a query repeated with the same parameters in one request.
pub fn duplicate_advice(table: Option<&str>, repeats: u64) -> Suggestion {
    let model = table.map(|t| model_of(t, None));
    let what = match &model {
        Some(m) => format!("on `{}`", m.name),
        None => "".to_owned(),
    };
    let text = format!(
        "The same query {what} ran {repeats} times with the same parameters in one request. \
         Run it once and reuse the result: keep it in a local variable, pass the object along, \
         use `functools.cached_property` on the object that computes it, or Django's cache \
         framework if it is shared between requests."
    )
    .replace("query  ran", "query ran");
    Suggestion {
        orm: Some(Orm::Cache),
        model: model.map(|m| m.name),
        field: None,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_from_tables() {
        assert_eq!(
            model_of("library_book", None),
            Model {
                app_label: Some("library".into()),
                name: "Book".into(),
                guessed: false
            }
        );
        let m = model_of("my_app_book", Some("my_app_loan"));
        assert_eq!(
            (m.app_label.as_deref(), m.name.as_str()),
            (Some("my_app"), "Book")
        );
        assert!(!m.guessed);
        assert!(model_of("my_app_book", None).guessed);
        assert!(model_of("books", None).guessed);
        assert_eq!(model_of("public.library_loan", None).name, "Loan");
    }

    #[test]
    fn table_matching() {
        assert!(table_is_model("library_book", "book"));
        assert!(!table_is_model("library_notebook", "book"));
    }

    #[test]
    fn advice_names_the_queryset_and_the_field() {
        let r = Relation {
            orm: Orm::SelectRelated,
            path: "member__branch".into(),
            guessed: false,
        };
        let s = n_plus_one_advice("library_loan", "library_branch", &r, 10);
        assert_eq!(s.model.as_deref(), Some("Loan"));
        assert_eq!(s.field.as_deref(), Some("member__branch"));
        assert!(
            s.text.contains("select_related(\"member__branch\")"),
            "{}",
            s.text
        );
        assert!(s.text.contains("loan.member.branch"), "{}", s.text);
        assert!(!s.text.contains("guessed"));
        let d = duplicate_advice(Some("library_branch"), 3);
        assert_eq!(d.orm, Some(Orm::Cache));
        assert!(d.text.contains("3 times"), "{}", d.text);
    }
}
