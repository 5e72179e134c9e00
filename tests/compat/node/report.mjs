// Where a compatibility program puts what it observed: JSON with sorted keys, into the file
// COMPAT_OUT names (the published client prints its own lines on stdout), else stdout.
import { writeFileSync } from 'node:fs'

const sorted = (value) =>
  Array.isArray(value)
    ? value.map(sorted)
    : value && typeof value === 'object'
      ? Object.fromEntries(Object.keys(value).sort().map((key) => [key, sorted(value[key])]))
      : value

export function report(observed) {
  const text = JSON.stringify(sorted(observed), null, 1) + '\n'
  if (process.env.COMPAT_OUT) writeFileSync(process.env.COMPAT_OUT, text)
  else process.stdout.write(text)
}
