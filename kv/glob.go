package kv

// Match reports whether s matches the Redis glob pattern (KEYS, SCAN MATCH):
// '*', '?', '[abc]', '[^a-z]' and '\' escapes. It backtracks only to the
// last '*', so a hostile pattern costs O(len(pattern)*len(s)), not
// exponential time.
func Match(pattern, s []byte) bool {
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(pattern) {
			switch pattern[pi] {
			case '*':
				for pi < len(pattern) && pattern[pi] == '*' {
					pi++
				}
				if pi == len(pattern) {
					return true
				}
				starP, starS = pi, si
				continue
			default:
				if ok, next := matchOne(pattern, pi, s[si]); ok {
					pi, si = next, si+1
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		pi, si = starP, starS
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

// matchOne matches the single-character token at pattern[pi] against c and
// returns the index after the token.
func matchOne(pattern []byte, pi int, c byte) (bool, int) {
	switch pattern[pi] {
	case '?':
		return true, pi + 1
	case '\\':
		if pi+1 < len(pattern) {
			return pattern[pi+1] == c, pi + 2
		}
		return c == '\\', pi + 1
	case '[':
		i := pi + 1
		not := false
		if i < len(pattern) && pattern[i] == '^' {
			not = true
			i++
		}
		match := false
		for i < len(pattern) && pattern[i] != ']' {
			switch {
			case pattern[i] == '\\' && i+1 < len(pattern):
				if pattern[i+1] == c {
					match = true
				}
				i += 2
			case i+2 < len(pattern) && pattern[i+1] == '-':
				lo, hi := pattern[i], pattern[i+2]
				if lo > hi {
					lo, hi = hi, lo
				}
				if c >= lo && c <= hi {
					match = true
				}
				i += 3
			default:
				if pattern[i] == c {
					match = true
				}
				i++
			}
		}
		if i < len(pattern) {
			i++ // the closing ']'
		}
		if not {
			match = !match
		}
		return match, i
	default:
		return pattern[pi] == c, pi + 1
	}
}
