package config

import (
	"fmt"
	"strings"
)

// expand replaces each ${NAME} in s with the value of the environment
// variable NAME. $${ stands for a literal ${; any other $ is kept as is.
// Values are not expanded again. It returns the problems found: unset
// variables, bad names, an unterminated ${.
func expand(s string, lookupEnv func(string) (string, bool)) (string, []string) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	var problems []string
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		name, rest, closed := strings.Cut(s[i+2:], "}")
		if !closed {
			problems = append(problems, "unterminated ${ (write $${ for a literal ${)")
			b.WriteString(s[i:])
			break
		}
		s = rest
		if !isEnvName(name) {
			problems = append(problems, fmt.Sprintf("invalid environment variable name %q in ${...}", name))
			continue
		}
		v, ok := lookupEnv(name)
		if !ok {
			problems = append(problems, fmt.Sprintf("environment variable %s is not set", name))
			continue
		}
		b.WriteString(v)
	}
	return b.String(), problems
}

// isEnvName reports whether name is a portable environment variable name:
// letters, digits and underscores, not starting with a digit.
func isEnvName(name string) bool {
	if name == "" || ('0' <= name[0] && name[0] <= '9') {
		return false
	}
	for _, r := range name {
		if !(r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}
