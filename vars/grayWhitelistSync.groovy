/** Make the tenant whitelist exactly its source (a file or URL). Help: vars/grayWhitelistSync.txt */
void call(Map args = [:]) {
    Map defaultConfig = [
        source         : null,           // tenant list: a workspace file or an http(s) URL on the agent's allow-list (required)
        dryRun         : false,          // print the diff, change nothing
        allowEmpty     : false,          // accept a source without ids (it empties the whitelist)
        reason         : null,           // why, for the audit log; null = the CLI's default
        dbCredentialsId: 'graysteps-db', // Jenkins "secret text": whitelist database URL; null = $GRAYSTEPS_DB/SQLite
    ]
    Map config = graystepsRun.config('grayWhitelistSync', defaultConfig, args, ['source'])
    List cli = ['whitelist', 'sync', '--source=' + config.source]
    if (config.dryRun) { cli << '--dry-run' }
    if (config.allowEmpty) { cli << '--allow-empty' }
    if (config.reason) { cli << '--reason=' + config.reason }
    graystepsRun(step: 'grayWhitelistSync', args: cli, config: config,
                 credentials: [[type: 'string', id: 'dbCredentialsId', env: ['GRAYSTEPS_DB']]])
}
