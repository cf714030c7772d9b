/// The hand-written sections of sundial(1): what does not follow from the command
/// definitions (description, files, environment, exit status, examples). Options are never
/// listed here; ``ManualPage`` generates them, so they cannot fall behind.
extension ManualPage {
    enum Prose {
        static let head = #"""
            .SH NAME
            sundial \- a careful job scheduler for Linux machines nobody logs into
            .SH SYNOPSIS
            .B sundial
            .I command
            .RI [ options ]
            .RI [ arguments ]
            .SH DESCRIPTION
            .B sundial
            runs scheduled jobs described in YAML files: cron expressions (5 fields, or 6 with
            seconds) in any time zone with daylight saving handled as cronie does, intervals,
            one\-shot times, dependencies between jobs, retries with backoff, timeouts that stop the
            whole process group, and concurrency policies. Every file is checked against a JSON
            Schema and every problem is reported as
            .IR file : line : column .
            A reload keeps the last good configuration when the new one is invalid. Events are written
            as JSON lines; state is kept in SQLite, so nothing runs twice across restarts.
            .PP
            .B sundial run
            is the agent. The commands
            .BR status ,
            .BR trigger ,
            .BR history ,
            .BR why ,
            .BR logs ,
            .BR pause ,
            .B resume
            and
            .B reload
            talk to a running agent over its control socket, found through the same
            .B \-\-state
            and
            .B \-\-control
            options. When no agent answers,
            .BR status ,
            .BR history ,
            .B why
            and
            .B logs
            read the state database read-only instead, and say so on standard error.
            The others work on files alone.
            The job file format is described in
            .I /usr/share/doc/sundial/configuration.md.gz
            and by
            .BR "sundial schema" .

            """#

        static let tail = #"""
            .SH FILES
            .TP
            .I /etc/sundial/jobs.d/
            Job files (*.yaml, *.yml), read recursively in path order; hidden files and editor
            leftovers are ignored.
            .TP
            .I /etc/default/sundial
            Options for the agent started by systemd:
            .B SUNDIAL_OPTS
            is appended to its command line (e.g.
            .BR "SUNDIAL_OPTS=\(dq\-\-metrics\-listen 127.0.0.1:9464\(dq" ).
            .TP
            .I /var/lib/sundial/
            State directory when running as root: state.db (SQLite) and the control socket
            sundial.sock. Without root the default is
            .I ./.sundial
            in the current directory.
            .TP
            .I /lib/systemd/system/sundial.service
            The systemd unit (Type=notify; reload with
            .BR "systemctl reload sundial" ).
            .TP
            .I /usr/share/sundial/sundial\-jobs.v1.schema.json
            The JSON Schema, for editors (yaml\-language\-server).
            .TP
            .I /usr/share/doc/sundial/
            reference.md (file format, semantics, event log, command line), configuration.md
            (every key), operations.md, migrating\-from\-cron.md, ci.md.
            .SH ENVIRONMENT
            .TP
            .B SUNDIAL_STATE
            State directory when
            .B \-\-state
            is not given.
            .TP
            .B NOTIFY_SOCKET
            Set by systemd; the agent reports readiness and reloads through it, and removes it
            from the jobs' environment.
            .SH EXIT STATUS
            .TP
            .B 0
            Success.
            .TP
            .B 1
            Invalid input (a job file, a cron expression) or a failed operation.
            .TP
            .B 2
            Usage error (unknown option, missing argument).
            .TP
            .B 3
            The agent is not reachable (client commands).
            .SH EXAMPLES
            .nf
            sundial validate /etc/sundial/jobs.d
            sundial next \-\-cron "30 2 * * *" \-\-tz Europe/Berlin \-\-count 3
            sundial import\-crontab \-\-system /etc/crontab > /etc/sundial/jobs.d/system.yaml
            journalctl \-u sundial \-o cat | jq \-c \(aqselect(.event == "run.finished")\(aq
            .fi
            .SH SEE ALSO
            .BR crontab (5),
            .BR systemd.timer (5),
            .BR journalctl (1)

            """#
    }
}
