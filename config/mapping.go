package config

import (
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/oncallbot/oncall/integrations"
)

// Templates of alert payloads (group_key, mapping) are compiled here only
// to report those that do not parse; the integrations package, which runs
// them, compiles them again with the same helpers. config imports
// integrations for that; integrations must not import config.

// template decodes a text/template of an alert payload into dst. An empty
// template is no template.
func (d *decoder) template(dst *string) field {
	return func(key string, v *yaml.Node) {
		s, ok := d.scalar(v, key)
		if !ok || strings.TrimSpace(s) == "" {
			return
		}
		if _, err := integrations.CompileTemplate(key, s); err != nil {
			d.errorf(v.Line, "%s: %v", key, err)
			d.failed[v] = true
			return
		}
		*dst = s
	}
}

// templateMapping decodes the mapping of a webhook integration: fields of
// integrations.MappingFields to templates. An empty template leaves its
// field to the default.
func (d *decoder) templateMapping(dst *map[string]string) field {
	return func(key string, v *yaml.Node) {
		n := d.resolve(v)
		if n == nil {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.errorf(n.Line, "%s: expected a mapping of fields to templates, such as {title: \"{{.alert.name}}\"}, got %s", key, describe(n))
			d.failed[n] = true
			return
		}
		fields := integrations.MappingFields()
		lines := map[string]int{} // the line of each field given
		m := map[string]string{}
		for _, p := range d.pairs(n, 0) {
			if p.key.Kind != yaml.ScalarNode {
				d.errorf(p.key.Line, "%s: keys must be plain names", key)
				continue
			}
			name := p.key.Value
			if !slices.Contains(fields, name) {
				d.errorf(p.key.Line, "%s: unknown field %q (use one of %s)", key, name, strings.Join(fields, ", "))
				continue
			}
			if first, seen := lines[name]; seen {
				if !p.merged { // a merged key is overridden by an explicit one
					d.errorf(p.key.Line, "%s: %s is set twice (first at line %d)", key, name, first)
				}
				continue
			}
			lines[name] = p.value.Line
			text, ok := d.scalar(p.value, key+"."+name)
			if !ok || strings.TrimSpace(text) == "" {
				continue
			}
			if _, err := integrations.CompileTemplate(name, text); err != nil {
				d.errorf(p.value.Line, "%s.%s: %v", key, name, err)
				continue
			}
			m[name] = text
		}
		if _, both := lines["status"]; both {
			if line, ok := lines["resolved_when"]; ok {
				d.errorf(line, "%s: use status or resolved_when, not both", key)
			}
		}
		if len(m) > 0 {
			*dst = m
		}
	}
}
