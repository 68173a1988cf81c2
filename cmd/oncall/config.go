package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/oncallbot/oncall/config"
)

// runConfig implements `oncall config check FILE`: exit 0 on a valid file,
// otherwise one "FILE:LINE: message" per problem and exit 1.
func runConfig(args []string, stdout, stderr io.Writer, lookup env) int {
	if len(args) != 2 || args[0] != "check" {
		fmt.Fprintln(stderr, "usage: oncall config check FILE")
		return 2
	}
	file := args[1]
	cfg, err := config.Load(file, lookup)
	if err != nil {
		var problems config.Errors
		if errors.As(err, &problems) {
			fmt.Fprintln(stdout, problems.Error())
		} else {
			fmt.Fprintf(stdout, "%s: %v\n", file, err)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (integrations: %d, schedules: %d, escalation chains: %d, users: %d)\n",
		file, len(cfg.Integrations), len(cfg.Schedules), len(cfg.EscalationChains), len(cfg.Users))
	return 0
}
