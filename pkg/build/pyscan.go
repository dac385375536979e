package build

import (
	"strings"
	"unicode/utf8"
)

// This file holds a small Python-aware scanner: just enough of Python's lexical structure (comments,
// every kind of string literal including nested f-string fields, bracket nesting, backslash
// continuations, indentation) to split env.py into logical lines and tell which of them run at module
// scope. It never executes or imports anything.

type tokKind int

const (
	tokName   tokKind = iota // identifiers and keywords
	tokNumber                // numeric literals (content irrelevant)
	tokString                // any string literal, prefix included
	tokOp                    // operators and delimiters
)

type token struct {
	kind tokKind
	text string
}

// logicalLine is one logical line of Python source: the tokens of a statement (or of several
// statements joined with ';'), with the column of its first token (tabs expanded to multiples of 8).
type logicalLine struct {
	indent int
	line   int // 1-based physical line of the first token
	toks   []token
}

// lexer turns Python source into logical lines. It is forgiving: unterminated strings and unbalanced
// brackets end at the end of the input instead of failing, since a broken env.py fails later anyway,
// with Python's own error message.
type lexer struct {
	src  string
	pos  int
	line int
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= utf8.RuneSelf
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || (c >= '0' && c <= '9')
}

// stringPrefix reports whether an identifier directly followed by a quote is a string prefix, and
// whether it makes an f-string (or a t-string, which has the same replacement-field syntax).
func stringPrefix(id string) (ok, formatted bool) {
	if len(id) > 2 {
		return false, false
	}
	seen := map[byte]bool{}
	for i := 0; i < len(id); i++ {
		c := id[i] | 0x20 // lower case
		switch c {
		case 'r', 'b', 'u', 'f', 't':
		default:
			return false, false
		}
		if seen[c] {
			return false, false
		}
		seen[c] = true
	}
	if seen['u'] && len(id) > 1 {
		return false, false
	}
	if seen['b'] && (seen['f'] || seen['t']) {
		return false, false
	}
	if seen['f'] && seen['t'] {
		return false, false
	}
	return true, seen['f'] || seen['t']
}

// lines splits the whole source into logical lines.
func (lx *lexer) lines() []logicalLine {
	var out []logicalLine
	lx.line = 1
	var cur *logicalLine
	depth := 0
	atLineStart := true
	indent := 0
	for lx.pos < len(lx.src) {
		c := lx.src[lx.pos]
		if atLineStart {
			// Measure the indentation of a new physical line that starts a logical line.
			indent = 0
			for lx.pos < len(lx.src) {
				switch lx.src[lx.pos] {
				case ' ':
					indent++
				case '\t':
					indent = (indent/8 + 1) * 8
				case '\f':
					indent = 0
				default:
					goto measured
				}
				lx.pos++
			}
		measured:
			atLineStart = false
			continue
		}
		switch {
		case c == '\n' || c == '\r':
			lx.pos++
			if c == '\r' && lx.pos < len(lx.src) && lx.src[lx.pos] == '\n' {
				lx.pos++
			}
			lx.line++
			if depth > 0 {
				continue // implicit continuation inside brackets
			}
			if cur != nil {
				out = append(out, *cur)
				cur = nil
			}
			atLineStart = true
		case c == ' ' || c == '\t' || c == '\f':
			lx.pos++
		case c == '#':
			for lx.pos < len(lx.src) && lx.src[lx.pos] != '\n' && lx.src[lx.pos] != '\r' {
				lx.pos++
			}
		case c == '\\':
			// Explicit continuation: the backslash and the line break vanish.
			lx.pos++
			if lx.pos < len(lx.src) && lx.src[lx.pos] == '\r' {
				lx.pos++
			}
			if lx.pos < len(lx.src) && lx.src[lx.pos] == '\n' {
				lx.pos++
			}
			lx.line++
		default:
			if cur == nil {
				cur = &logicalLine{indent: indent, line: lx.line}
			}
			tok := lx.next()
			if tok.kind == tokOp {
				switch tok.text {
				case "(", "[", "{":
					depth++
				case ")", "]", "}":
					if depth > 0 {
						depth--
					}
				}
			}
			cur.toks = append(cur.toks, tok)
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

// next reads one token starting at a non-blank character.
func (lx *lexer) next() token {
	start := lx.pos
	c := lx.src[lx.pos]
	switch {
	case isIdentStart(c):
		for lx.pos < len(lx.src) && isIdentChar(lx.src[lx.pos]) {
			lx.pos++
		}
		id := lx.src[start:lx.pos]
		if lx.pos < len(lx.src) && (lx.src[lx.pos] == '"' || lx.src[lx.pos] == '\'') {
			if ok, formatted := stringPrefix(id); ok {
				lx.skipString(formatted)
				return token{tokString, lx.src[start:lx.pos]}
			}
		}
		return token{tokName, id}
	case c >= '0' && c <= '9' || (c == '.' && lx.pos+1 < len(lx.src) && lx.src[lx.pos+1] >= '0' && lx.src[lx.pos+1] <= '9'):
		lx.pos++
		for lx.pos < len(lx.src) {
			d := lx.src[lx.pos]
			if isIdentChar(d) || d == '.' {
				lx.pos++
			} else if (d == '+' || d == '-') && (lx.src[lx.pos-1]|0x20) == 'e' && !strings.ContainsAny(lx.src[start:lx.pos], "xX") {
				lx.pos++
			} else {
				break
			}
		}
		return token{tokNumber, lx.src[start:lx.pos]}
	case c == '"' || c == '\'':
		lx.skipString(false)
		return token{tokString, lx.src[start:lx.pos]}
	}
	// Operators: the three-character ones, then two, then one.
	for _, op := range []string{"**=", "//=", ">>=", "<<=", "...", "->", ":=", "==", "!=", "<=", ">=", "**", "//", "<<", ">>", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "@="} {
		if strings.HasPrefix(lx.src[lx.pos:], op) {
			lx.pos += len(op)
			return token{tokOp, op}
		}
	}
	_, size := utf8.DecodeRuneInString(lx.src[lx.pos:])
	lx.pos += size
	return token{tokOp, lx.src[start:lx.pos]}
}

// skipString moves past a string literal whose opening quote is at lx.pos.
func (lx *lexer) skipString(formatted bool) {
	q := lx.src[lx.pos]
	triple := strings.HasPrefix(lx.src[lx.pos:], strings.Repeat(string(q), 3))
	if triple {
		lx.pos += 3
	} else {
		lx.pos++
	}
	for lx.pos < len(lx.src) {
		c := lx.src[lx.pos]
		switch {
		case c == '\\':
			// Even in raw strings a backslash keeps the next character from closing the string.
			lx.pos++
			if lx.pos < len(lx.src) {
				if lx.src[lx.pos] == '\n' {
					lx.line++
				}
				lx.pos++
			}
		case c == q:
			if !triple {
				lx.pos++
				return
			}
			if strings.HasPrefix(lx.src[lx.pos:], strings.Repeat(string(q), 3)) {
				lx.pos += 3
				return
			}
			lx.pos++
		case c == '\n' || c == '\r':
			if !triple {
				return // unterminated single-quoted string: stop at the line break
			}
			lx.line++
			lx.pos++
		case formatted && c == '{':
			if strings.HasPrefix(lx.src[lx.pos:], "{{") {
				lx.pos += 2
				continue
			}
			lx.pos++
			lx.skipField()
		default:
			lx.pos++
		}
	}
}

// skipField moves past an f-string replacement field, just after its '{', up to and including the
// matching '}'. Since Python 3.12 a field may hold any expression, including strings that reuse the
// enclosing quote, so it is scanned like code; its format spec may hold nested fields.
func (lx *lexer) skipField() {
	depth := 0
	for lx.pos < len(lx.src) {
		c := lx.src[lx.pos]
		switch {
		case c == '\n':
			lx.line++
			lx.pos++
		case c == '\'' || c == '"' || isIdentStart(c):
			lx.next() // a name, or a (possibly prefixed) nested string
		case c == '(' || c == '[' || c == '{':
			depth++
			lx.pos++
		case c == ')' || c == ']':
			if depth > 0 {
				depth--
			}
			lx.pos++
		case c == '}':
			lx.pos++
			if depth == 0 {
				return
			}
			depth--
		case c == ':' && depth == 0 && !strings.HasPrefix(lx.src[lx.pos:], ":="):
			lx.pos++
			lx.skipFormatSpec()
			return
		default:
			lx.pos++
		}
	}
}

// skipFormatSpec moves past a format spec (after the field's ':') and the field's closing '}'.
func (lx *lexer) skipFormatSpec() {
	for lx.pos < len(lx.src) {
		c := lx.src[lx.pos]
		switch c {
		case '{':
			lx.pos++
			lx.skipField()
		case '}':
			lx.pos++
			return
		case '\\':
			lx.pos += 2
		case '\n':
			lx.line++
			lx.pos++
		default:
			lx.pos++
		}
	}
}
