// The JSON Schema subset docs/dashboard.schema.json uses, twice: TypeScript
// declarations from it (generateTypes) and a validator (validate) that the
// tests run on real documents. Supported: type (and type arrays), enum,
// const, properties, required, additionalProperties, items, $ref to
// #/$defs/Name, oneOf, anyOf, pattern, description.

const refName = (ref) => {
  const m = /^#\/\$defs\/([A-Za-z_][A-Za-z0-9_]*)$/.exec(ref);
  if (!m) throw new Error(`unsupported $ref ${ref}`);
  return m[1];
};

const doc = (text, indent) => (text ? `${indent}/** ${text.replace(/\*\//g, '*\\/')} */\n` : '');
const key = (k) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k) ? k : JSON.stringify(k));

function tsType(s, indent) {
  if (s === true || (s && typeof s === 'object' && Object.keys(s).length === 0)) return 'unknown';
  if (s.$ref) return refName(s.$ref);
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (s.oneOf || s.anyOf) return (s.oneOf || s.anyOf).map((x) => tsType(x, indent)).join(' | ');
  const types = Array.isArray(s.type) ? s.type : [s.type];
  return types.map((t) => {
    switch (t) {
      case 'string': return 'string';
      case 'number': case 'integer': return 'number';
      case 'boolean': return 'boolean';
      case 'null': return 'null';
      case 'array': return `Array<${s.items ? tsType(s.items, indent) : 'unknown'}>`;
      case 'object': return objectType(s, indent);
      default: throw new Error(`unsupported type ${t}`);
    }
  }).join(' | ');
}

function objectType(s, indent) {
  const inner = indent + '  ';
  const req = new Set(s.required || []);
  let out = '{\n';
  for (const [k, v] of Object.entries(s.properties || {})) {
    out += doc(v.description, inner);
    out += `${inner}${key(k)}${req.has(k) ? '' : '?'}: ${tsType(v, inner)};\n`;
  }
  if (s.additionalProperties && s.additionalProperties !== true) {
    out += `${inner}[key: string]: ${tsType(s.additionalProperties, inner)};\n`;
  }
  return out + `${indent}}`;
}

function declaration(name, s) {
  const body = doc(s.description, '');
  const isObject = s.type === 'object' && !s.oneOf && !s.anyOf;
  return isObject
    ? `${body}export interface ${name} ${objectType(s, '')}\n`
    : `${body}export type ${name} = ${tsType(s, '')};\n`;
}

/** The .d.ts text for a schema: the root under its title, then every $defs entry. */
export function generateTypes(schema, { source = 'docs/dashboard.schema.json' } = {}) {
  let out = `// GENERATED from ${source} by contrib/client/scripts/gen-types.mjs: do not edit.\n` +
    '// Change the schema, then run `npm run gen-types` in contrib/client.\n\n';
  out += declaration(schema.title, schema);
  for (const [name, s] of Object.entries(schema.$defs || {})) out += '\n' + declaration(name, s);
  return out;
}

/** Errors (strings, "path: what") of value against schema; [] when valid. */
export function validate(schema, value, root = schema, path = '$', errors = []) {
  if (schema === true || (schema && typeof schema === 'object' && Object.keys(schema).length === 0)) return errors;
  if (schema.$ref) return validate(root.$defs[refName(schema.$ref)], value, root, path, errors);
  if (schema.oneOf || schema.anyOf) {
    const branches = schema.oneOf || schema.anyOf;
    const ok = branches.filter((b) => validate(b, value, root, path, []).length === 0).length;
    if (schema.oneOf ? ok !== 1 : ok === 0) errors.push(`${path}: matches ${ok} of ${branches.length} alternatives`);
    return errors;
  }
  if (schema.const !== undefined && value !== schema.const) errors.push(`${path}: is not ${JSON.stringify(schema.const)}`);
  if (schema.enum && !schema.enum.includes(value)) errors.push(`${path}: ${JSON.stringify(value)} is not one of ${schema.enum.join(', ')}`);
  if (schema.type) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const is = (t) => {
      switch (t) {
        case 'null': return value === null;
        case 'array': return Array.isArray(value);
        case 'object': return value !== null && typeof value === 'object' && !Array.isArray(value);
        case 'integer': return Number.isInteger(value);
        case 'number': return typeof value === 'number' && Number.isFinite(value);
        default: return typeof value === t;
      }
    };
    if (!types.some(is)) { errors.push(`${path}: ${JSON.stringify(value)?.slice(0, 60)} is not ${types.join(' or ')}`); return errors; }
  }
  if (typeof value === 'string' && schema.pattern && !new RegExp(schema.pattern).test(value)) {
    errors.push(`${path}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
  }
  if (Array.isArray(value) && schema.items) value.forEach((v, i) => validate(schema.items, v, root, `${path}[${i}]`, errors));
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const k of schema.required || []) if (!Object.prototype.hasOwnProperty.call(value, k)) errors.push(`${path}: no ${k}`);
    const props = schema.properties || {};
    for (const [k, v] of Object.entries(value)) {
      if (props[k]) validate(props[k], v, root, `${path}.${k}`, errors);
      else if (schema.additionalProperties === false) errors.push(`${path}: unexpected member ${k}`);
      else if (schema.additionalProperties && schema.additionalProperties !== true) validate(schema.additionalProperties, v, root, `${path}.${k}`, errors);
    }
  }
  return errors;
}
