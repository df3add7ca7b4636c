// Loads one of the dashboard's ES modules (Sources/PlexusDashboard/Public) in node.
// The files are plain `.js` served to browsers as modules; node would read them as
// CommonJS without a package.json beside them, so they are imported from their text.
import { readFileSync } from 'node:fs';

const root = new URL('../../Sources/PlexusDashboard/Public/', import.meta.url);

export async function loadModule(path) {
  const source = readFileSync(new URL(path, root), 'utf8');
  return import('data:text/javascript;charset=utf-8,' + encodeURIComponent(source));
}
