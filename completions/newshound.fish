# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_newshound_global_optspecs
    string join \n log-format= v/verbose h/help V/version
end

function __fish_newshound_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_newshound_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_newshound_using_subcommand
    set -l cmd (__fish_newshound_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c newshound -n "__fish_newshound_needs_command" -l log-format -d 'How logs are written to stderr: text for people and journald, json for log shippers' -r -f -a "text\t''
json\t''"
complete -c newshound -n "__fish_newshound_needs_command" -s v -l verbose -d 'Log more: -v adds what each poll and delivery did (`once` shows only warnings, errors and its summary by default), -vv debugging detail. RUST_LOG overrides'
complete -c newshound -n "__fish_newshound_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c newshound -n "__fish_newshound_needs_command" -s V -l version -d 'Print version'
complete -c newshound -n "__fish_newshound_needs_command" -f -a "run" -d 'Run the daemon: poll every feed on its interval and deliver alerts'
complete -c newshound -n "__fish_newshound_needs_command" -f -a "once" -d 'Poll every feed once, deliver what is due, and exit'
complete -c newshound -n "__fish_newshound_needs_command" -f -a "check" -d 'Validate the config, print a summary, and exit 0 (valid) or 2 (invalid)'
complete -c newshound -n "__fish_newshound_needs_command" -f -a "test-rules" -d 'Show which items match which rules; sends nothing and marks nothing seen'
complete -c newshound -n "__fish_newshound_needs_command" -f -a "status" -d 'Show each feed\'s last poll, result and next poll, and the alert queue'
complete -c newshound -n "__fish_newshound_needs_command" -f -a "rules" -d 'Print every rule as TOML (included files too); with --learned, with the examples feedback links taught them'
complete -c newshound -n "__fish_newshound_needs_command" -f -a "why" -d 'Tell what became of an item: the filter that dropped it, each rule\'s verdict, its alerts and their deliveries'
complete -c newshound -n "__fish_newshound_needs_command" -f -a "replay" -d 'Send alerts again: dead letters (--dead), a held flood (--held), or past alerts'
complete -c newshound -n "__fish_newshound_needs_command" -f -a "send-test" -d 'Send a sample alert through one channel and show what the receiver answered'
complete -c newshound -n "__fish_newshound_needs_command" -f -a "migrate-state" -d 'Copy the state (feeds, seen items, the alert queue) from the SQLite file in daemon.state_dir into an empty PostgreSQL database, for [store]'
complete -c newshound -n "__fish_newshound_needs_command" -f -a "backup" -d 'Write a consistent copy of the state to FILE, while the daemon runs'
complete -c newshound -n "__fish_newshound_needs_command" -f -a "restore" -d 'Put the state saved in FILE in place of the current one (the daemon stopped); the replaced state is kept beside it'
complete -c newshound -n "__fish_newshound_needs_command" -f -a "import-opml" -d 'Read an OPML subscription list (from a feed reader) into [[feeds]] entries'
complete -c newshound -n "__fish_newshound_needs_command" -f -a "export-opml" -d 'Write the config\'s feeds as OPML, for a feed reader'
complete -c newshound -n "__fish_newshound_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c newshound -n "__fish_newshound_needs_command" -f -a "man" -d 'Print the manual page (roff)'
complete -c newshound -n "__fish_newshound_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c newshound -n "__fish_newshound_using_subcommand run" -l config -d 'The config file' -r -F
complete -c newshound -n "__fish_newshound_using_subcommand run" -l log-format -d 'How logs are written to stderr: text for people and journald, json for log shippers' -r -f -a "text\t''
json\t''"
complete -c newshound -n "__fish_newshound_using_subcommand run" -s v -l verbose -d 'Log more: -v adds what each poll and delivery did (`once` shows only warnings, errors and its summary by default), -vv debugging detail. RUST_LOG overrides'
complete -c newshound -n "__fish_newshound_using_subcommand run" -s h -l help -d 'Print help'
complete -c newshound -n "__fish_newshound_using_subcommand once" -l config -d 'The config file' -r -F
complete -c newshound -n "__fish_newshound_using_subcommand once" -l log-format -d 'How logs are written to stderr: text for people and journald, json for log shippers' -r -f -a "text\t''
json\t''"
complete -c newshound -n "__fish_newshound_using_subcommand once" -s v -l verbose -d 'Log more: -v adds what each poll and delivery did (`once` shows only warnings, errors and its summary by default), -vv debugging detail. RUST_LOG overrides'
complete -c newshound -n "__fish_newshound_using_subcommand once" -s h -l help -d 'Print help'
complete -c newshound -n "__fish_newshound_using_subcommand check" -l config -d 'The config file' -r -F
complete -c newshound -n "__fish_newshound_using_subcommand check" -l log-format -d 'How logs are written to stderr: text for people and journald, json for log shippers' -r -f -a "text\t''
json\t''"
complete -c newshound -n "__fish_newshound_using_subcommand check" -s v -l verbose -d 'Log more: -v adds what each poll and delivery did (`once` shows only warnings, errors and its summary by default), -vv debugging detail. RUST_LOG overrides'
complete -c newshound -n "__fish_newshound_using_subcommand check" -s h -l help -d 'Print help'
complete -c newshound -n "__fish_newshound_using_subcommand test-rules" -l config -d 'The config file' -r -F
complete -c newshound -n "__fish_newshound_using_subcommand test-rules" -l feed -d 'Test one configured feed (default: all of them)' -r
complete -c newshound -n "__fish_newshound_using_subcommand test-rules" -l url -d 'Test a feed at this URL' -r
complete -c newshound -n "__fish_newshound_using_subcommand test-rules" -l file -d 'Test a feed file on disk' -r -F
complete -c newshound -n "__fish_newshound_using_subcommand test-rules" -l since -d 'Test the items the daemon saw within this long (at most 24h; of a feed\'s first poll none, unless daemon.backfill_new_rules), from its state, instead of fetching' -r
complete -c newshound -n "__fish_newshound_using_subcommand test-rules" -l log-format -d 'How logs are written to stderr: text for people and journald, json for log shippers' -r -f -a "text\t''
json\t''"
complete -c newshound -n "__fish_newshound_using_subcommand test-rules" -l json -d 'One JSON object per matching item, one per line, with the hits\' byte spans'
complete -c newshound -n "__fish_newshound_using_subcommand test-rules" -l explain -d 'Show each matching rule with its terms highlighted in context'
complete -c newshound -n "__fish_newshound_using_subcommand test-rules" -s v -l verbose -d 'Log more: -v adds what each poll and delivery did (`once` shows only warnings, errors and its summary by default), -vv debugging detail. RUST_LOG overrides'
complete -c newshound -n "__fish_newshound_using_subcommand test-rules" -s h -l help -d 'Print help'
complete -c newshound -n "__fish_newshound_using_subcommand status" -l config -d 'The config file' -r -F
complete -c newshound -n "__fish_newshound_using_subcommand status" -l log-format -d 'How logs are written to stderr: text for people and journald, json for log shippers' -r -f -a "text\t''
json\t''"
complete -c newshound -n "__fish_newshound_using_subcommand status" -l json -d 'One JSON object instead of a table'
complete -c newshound -n "__fish_newshound_using_subcommand status" -l all -d 'List every feed and rule (by default, with more than 50 feeds or rules, only those that need a look are listed, under a summary)'
complete -c newshound -n "__fish_newshound_using_subcommand status" -s v -l verbose -d 'Log more: -v adds what each poll and delivery did (`once` shows only warnings, errors and its summary by default), -vv debugging detail. RUST_LOG overrides'
complete -c newshound -n "__fish_newshound_using_subcommand status" -s h -l help -d 'Print help'
complete -c newshound -n "__fish_newshound_using_subcommand rules" -l config -d 'The config file' -r -F
complete -c newshound -n "__fish_newshound_using_subcommand rules" -l log-format -d 'How logs are written to stderr: text for people and journald, json for log shippers' -r -f -a "text\t''
json\t''"
complete -c newshound -n "__fish_newshound_using_subcommand rules" -l learned -d 'Add the examples learned from feedback links to each rule\'s like and unlike'
complete -c newshound -n "__fish_newshound_using_subcommand rules" -s v -l verbose -d 'Log more: -v adds what each poll and delivery did (`once` shows only warnings, errors and its summary by default), -vv debugging detail. RUST_LOG overrides'
complete -c newshound -n "__fish_newshound_using_subcommand rules" -s h -l help -d 'Print help'
complete -c newshound -n "__fish_newshound_using_subcommand why" -l config -d 'The config file' -r -F
complete -c newshound -n "__fish_newshound_using_subcommand why" -l log-format -d 'How logs are written to stderr: text for people and journald, json for log shippers' -r -f -a "text\t''
json\t''"
complete -c newshound -n "__fish_newshound_using_subcommand why" -l json -d 'One JSON object, for scripts'
complete -c newshound -n "__fish_newshound_using_subcommand why" -s v -l verbose -d 'Log more: -v adds what each poll and delivery did (`once` shows only warnings, errors and its summary by default), -vv debugging detail. RUST_LOG overrides'
complete -c newshound -n "__fish_newshound_using_subcommand why" -s h -l help -d 'Print help'
complete -c newshound -n "__fish_newshound_using_subcommand replay" -l config -d 'The config file' -r -F
complete -c newshound -n "__fish_newshound_using_subcommand replay" -l rule -d 'Only alerts of this rule' -r
complete -c newshound -n "__fish_newshound_using_subcommand replay" -l since -d 'Only alerts queued within this long (e.g. 24h)' -r
complete -c newshound -n "__fish_newshound_using_subcommand replay" -l log-format -d 'How logs are written to stderr: text for people and journald, json for log shippers' -r -f -a "text\t''
json\t''"
complete -c newshound -n "__fish_newshound_using_subcommand replay" -l dead -d 'Re-queue dead letters (alerts given up on)'
complete -c newshound -n "__fish_newshound_using_subcommand replay" -l held -d 'Release alerts held back as a flood'
complete -c newshound -n "__fish_newshound_using_subcommand replay" -l dry-run -d 'Show what would be re-queued, change nothing'
complete -c newshound -n "__fish_newshound_using_subcommand replay" -s v -l verbose -d 'Log more: -v adds what each poll and delivery did (`once` shows only warnings, errors and its summary by default), -vv debugging detail. RUST_LOG overrides'
complete -c newshound -n "__fish_newshound_using_subcommand replay" -s h -l help -d 'Print help'
complete -c newshound -n "__fish_newshound_using_subcommand send-test" -l config -d 'The config file' -r -F
complete -c newshound -n "__fish_newshound_using_subcommand send-test" -l log-format -d 'How logs are written to stderr: text for people and journald, json for log shippers' -r -f -a "text\t''
json\t''"
complete -c newshound -n "__fish_newshound_using_subcommand send-test" -s v -l verbose -d 'Log more: -v adds what each poll and delivery did (`once` shows only warnings, errors and its summary by default), -vv debugging detail. RUST_LOG overrides'
complete -c newshound -n "__fish_newshound_using_subcommand send-test" -s h -l help -d 'Print help'
complete -c newshound -n "__fish_newshound_using_subcommand migrate-state" -l config -d 'The config file' -r -F
complete -c newshound -n "__fish_newshound_using_subcommand migrate-state" -l to -d 'The database: postgres://user[:password]@host:port/database (TLS with ?sslmode=require); it must hold no newshound state yet' -r
complete -c newshound -n "__fish_newshound_using_subcommand migrate-state" -l log-format -d 'How logs are written to stderr: text for people and journald, json for log shippers' -r -f -a "text\t''
json\t''"
complete -c newshound -n "__fish_newshound_using_subcommand migrate-state" -s v -l verbose -d 'Log more: -v adds what each poll and delivery did (`once` shows only warnings, errors and its summary by default), -vv debugging detail. RUST_LOG overrides'
complete -c newshound -n "__fish_newshound_using_subcommand migrate-state" -s h -l help -d 'Print help'
complete -c newshound -n "__fish_newshound_using_subcommand backup" -l config -d 'The config file' -r -F
complete -c newshound -n "__fish_newshound_using_subcommand backup" -l log-format -d 'How logs are written to stderr: text for people and journald, json for log shippers' -r -f -a "text\t''
json\t''"
complete -c newshound -n "__fish_newshound_using_subcommand backup" -s v -l verbose -d 'Log more: -v adds what each poll and delivery did (`once` shows only warnings, errors and its summary by default), -vv debugging detail. RUST_LOG overrides'
complete -c newshound -n "__fish_newshound_using_subcommand backup" -s h -l help -d 'Print help'
complete -c newshound -n "__fish_newshound_using_subcommand restore" -l config -d 'The config file' -r -F
complete -c newshound -n "__fish_newshound_using_subcommand restore" -l log-format -d 'How logs are written to stderr: text for people and journald, json for log shippers' -r -f -a "text\t''
json\t''"
complete -c newshound -n "__fish_newshound_using_subcommand restore" -s v -l verbose -d 'Log more: -v adds what each poll and delivery did (`once` shows only warnings, errors and its summary by default), -vv debugging detail. RUST_LOG overrides'
complete -c newshound -n "__fish_newshound_using_subcommand restore" -s h -l help -d 'Print help'
complete -c newshound -n "__fish_newshound_using_subcommand import-opml" -l config -d 'The config file' -r -F
complete -c newshound -n "__fish_newshound_using_subcommand import-opml" -l log-format -d 'How logs are written to stderr: text for people and journald, json for log shippers' -r -f -a "text\t''
json\t''"
complete -c newshound -n "__fish_newshound_using_subcommand import-opml" -l write -d 'Append the new feeds to the config file (comments and layout kept) instead of printing them'
complete -c newshound -n "__fish_newshound_using_subcommand import-opml" -s v -l verbose -d 'Log more: -v adds what each poll and delivery did (`once` shows only warnings, errors and its summary by default), -vv debugging detail. RUST_LOG overrides'
complete -c newshound -n "__fish_newshound_using_subcommand import-opml" -s h -l help -d 'Print help'
complete -c newshound -n "__fish_newshound_using_subcommand export-opml" -l config -d 'The config file' -r -F
complete -c newshound -n "__fish_newshound_using_subcommand export-opml" -l log-format -d 'How logs are written to stderr: text for people and journald, json for log shippers' -r -f -a "text\t''
json\t''"
complete -c newshound -n "__fish_newshound_using_subcommand export-opml" -s v -l verbose -d 'Log more: -v adds what each poll and delivery did (`once` shows only warnings, errors and its summary by default), -vv debugging detail. RUST_LOG overrides'
complete -c newshound -n "__fish_newshound_using_subcommand export-opml" -s h -l help -d 'Print help'
complete -c newshound -n "__fish_newshound_using_subcommand completions" -l log-format -d 'How logs are written to stderr: text for people and journald, json for log shippers' -r -f -a "text\t''
json\t''"
complete -c newshound -n "__fish_newshound_using_subcommand completions" -s v -l verbose -d 'Log more: -v adds what each poll and delivery did (`once` shows only warnings, errors and its summary by default), -vv debugging detail. RUST_LOG overrides'
complete -c newshound -n "__fish_newshound_using_subcommand completions" -s h -l help -d 'Print help'
complete -c newshound -n "__fish_newshound_using_subcommand man" -l log-format -d 'How logs are written to stderr: text for people and journald, json for log shippers' -r -f -a "text\t''
json\t''"
complete -c newshound -n "__fish_newshound_using_subcommand man" -s v -l verbose -d 'Log more: -v adds what each poll and delivery did (`once` shows only warnings, errors and its summary by default), -vv debugging detail. RUST_LOG overrides'
complete -c newshound -n "__fish_newshound_using_subcommand man" -s h -l help -d 'Print help'
complete -c newshound -n "__fish_newshound_using_subcommand help; and not __fish_seen_subcommand_from run once check test-rules status rules why replay send-test migrate-state backup restore import-opml export-opml completions man help" -f -a "run" -d 'Run the daemon: poll every feed on its interval and deliver alerts'
complete -c newshound -n "__fish_newshound_using_subcommand help; and not __fish_seen_subcommand_from run once check test-rules status rules why replay send-test migrate-state backup restore import-opml export-opml completions man help" -f -a "once" -d 'Poll every feed once, deliver what is due, and exit'
complete -c newshound -n "__fish_newshound_using_subcommand help; and not __fish_seen_subcommand_from run once check test-rules status rules why replay send-test migrate-state backup restore import-opml export-opml completions man help" -f -a "check" -d 'Validate the config, print a summary, and exit 0 (valid) or 2 (invalid)'
complete -c newshound -n "__fish_newshound_using_subcommand help; and not __fish_seen_subcommand_from run once check test-rules status rules why replay send-test migrate-state backup restore import-opml export-opml completions man help" -f -a "test-rules" -d 'Show which items match which rules; sends nothing and marks nothing seen'
complete -c newshound -n "__fish_newshound_using_subcommand help; and not __fish_seen_subcommand_from run once check test-rules status rules why replay send-test migrate-state backup restore import-opml export-opml completions man help" -f -a "status" -d 'Show each feed\'s last poll, result and next poll, and the alert queue'
complete -c newshound -n "__fish_newshound_using_subcommand help; and not __fish_seen_subcommand_from run once check test-rules status rules why replay send-test migrate-state backup restore import-opml export-opml completions man help" -f -a "rules" -d 'Print every rule as TOML (included files too); with --learned, with the examples feedback links taught them'
complete -c newshound -n "__fish_newshound_using_subcommand help; and not __fish_seen_subcommand_from run once check test-rules status rules why replay send-test migrate-state backup restore import-opml export-opml completions man help" -f -a "why" -d 'Tell what became of an item: the filter that dropped it, each rule\'s verdict, its alerts and their deliveries'
complete -c newshound -n "__fish_newshound_using_subcommand help; and not __fish_seen_subcommand_from run once check test-rules status rules why replay send-test migrate-state backup restore import-opml export-opml completions man help" -f -a "replay" -d 'Send alerts again: dead letters (--dead), a held flood (--held), or past alerts'
complete -c newshound -n "__fish_newshound_using_subcommand help; and not __fish_seen_subcommand_from run once check test-rules status rules why replay send-test migrate-state backup restore import-opml export-opml completions man help" -f -a "send-test" -d 'Send a sample alert through one channel and show what the receiver answered'
complete -c newshound -n "__fish_newshound_using_subcommand help; and not __fish_seen_subcommand_from run once check test-rules status rules why replay send-test migrate-state backup restore import-opml export-opml completions man help" -f -a "migrate-state" -d 'Copy the state (feeds, seen items, the alert queue) from the SQLite file in daemon.state_dir into an empty PostgreSQL database, for [store]'
complete -c newshound -n "__fish_newshound_using_subcommand help; and not __fish_seen_subcommand_from run once check test-rules status rules why replay send-test migrate-state backup restore import-opml export-opml completions man help" -f -a "backup" -d 'Write a consistent copy of the state to FILE, while the daemon runs'
complete -c newshound -n "__fish_newshound_using_subcommand help; and not __fish_seen_subcommand_from run once check test-rules status rules why replay send-test migrate-state backup restore import-opml export-opml completions man help" -f -a "restore" -d 'Put the state saved in FILE in place of the current one (the daemon stopped); the replaced state is kept beside it'
complete -c newshound -n "__fish_newshound_using_subcommand help; and not __fish_seen_subcommand_from run once check test-rules status rules why replay send-test migrate-state backup restore import-opml export-opml completions man help" -f -a "import-opml" -d 'Read an OPML subscription list (from a feed reader) into [[feeds]] entries'
complete -c newshound -n "__fish_newshound_using_subcommand help; and not __fish_seen_subcommand_from run once check test-rules status rules why replay send-test migrate-state backup restore import-opml export-opml completions man help" -f -a "export-opml" -d 'Write the config\'s feeds as OPML, for a feed reader'
complete -c newshound -n "__fish_newshound_using_subcommand help; and not __fish_seen_subcommand_from run once check test-rules status rules why replay send-test migrate-state backup restore import-opml export-opml completions man help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c newshound -n "__fish_newshound_using_subcommand help; and not __fish_seen_subcommand_from run once check test-rules status rules why replay send-test migrate-state backup restore import-opml export-opml completions man help" -f -a "man" -d 'Print the manual page (roff)'
complete -c newshound -n "__fish_newshound_using_subcommand help; and not __fish_seen_subcommand_from run once check test-rules status rules why replay send-test migrate-state backup restore import-opml export-opml completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
