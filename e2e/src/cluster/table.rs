//! Small aligned text tables for the demo's and the benchmark's output.

/// A table of text cells: a header row and data rows, rendered with columns padded to the
/// widest cell (by characters) and two spaces between columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (missing cells render empty, extra cells get their own columns).
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Table {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no data rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Renders the table, every line prefixed by `indent` and ended by a newline; trailing
    /// spaces are trimmed.
    pub fn render(&self, indent: &str) -> String {
        let cols = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0usize; cols];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::from(indent);
            for (i, w) in widths.iter().enumerate() {
                let c = r.get(i).map(String::as_str).unwrap_or("");
                line.push_str(c);
                if i + 1 < cols {
                    line.push_str(&" ".repeat(w - c.chars().count() + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_columns_to_the_widest_cell() {
        let mut t = Table::new(["name", "size"]);
        t.row(["bgp-pool", "256"])
            .row(["l2", "18446744073709551616"]);
        assert_eq!(
            t.render("  "),
            "  name      size\n  bgp-pool  256\n  l2        18446744073709551616\n"
        );
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn ragged_rows_and_unicode() {
        let mut t = Table::new(["a"]);
        t.row(["é", "x"]).row(Vec::<String>::new());
        assert_eq!(t.render(""), "a\né  x\n\n");
        assert!(Table::new(["x"]).is_empty());
    }
}
