//! Plain-text tables as kubectl prints them: upper-case headers, columns padded to their
//! widest cell and separated by three spaces, no trailing blanks.

/// A table being built row by row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells print empty, extra cells are dropped.
    pub fn push(&mut self, mut row: Vec<String>) {
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }

    /// Number of rows (without the header).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row (header first), each ending in a newline.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("   ");
                }
                line.push_str(cell);
                let pad = w - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
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
    fn render_table() {
        type Case<'a> = (Vec<&'a str>, Vec<Vec<&'a str>>, &'a str);
        let cases: Vec<Case> = vec![
            (vec!["NAME", "AGE"], vec![], "NAME   AGE\n"),
            (
                vec!["NAME", "VIPS", "POOL"],
                vec![vec!["web", "10.0.0.1", "a"], vec!["longer-name", "", "b"]],
                "NAME          VIPS       POOL\nweb           10.0.0.1   a\nlonger-name              b\n",
            ),
            // Short rows are padded, long rows cut; non-ASCII counts by character.
            (
                vec!["A", "B"],
                vec![vec!["é"], vec!["x", "y", "z"]],
                "A   B\né\nx   y\n",
            ),
        ];
        for (header, rows, want) in cases {
            let mut t = Table::new(&header);
            for r in rows {
                t.push(r.into_iter().map(str::to_owned).collect());
            }
            assert_eq!(t.render(), want);
        }
        let mut t = Table::new(&["X"]);
        assert!(t.is_empty());
        t.push(vec!["1".into()]);
        assert_eq!(t.len(), 1);
    }
}
