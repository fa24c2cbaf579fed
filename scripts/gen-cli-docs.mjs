// Rewrites docs/cli.md from the built CLI's yargs definitions: `npm run build && node scripts/gen-cli-docs.mjs`
// (wired as `npm run docs:cli`). test/unit/cli/cli-docs.test.ts fails when the file is stale.
import { writeFileSync } from 'node:fs';
import { buildCli } from '../dist/src/cli/main.js';
import { renderCliDocs } from '../dist/src/cli/help-docs.js';

const target = new URL('../docs/cli.md', import.meta.url);
writeFileSync(target, await renderCliDocs(buildCli));
console.log(`wrote ${target.pathname}`);
