import { type GraphQLResolveInfo, Kind, type SelectionSetNode } from 'graphql';

/**
 * The names (not aliases) of the fields asked for under `path` of the field being resolved
 * (`['edges', 'node']` for a connection's nodes; `[]` for the field's own object), fragments and
 * inline fragments included. A field under a directive counts as asked for: a superset is safe.
 */
export function selectedFieldNames(info: GraphQLResolveInfo, path: readonly string[]): Set<string> {
  let sets: SelectionSetNode[] = info.fieldNodes.flatMap((node) => (node.selectionSet ? [node.selectionSet] : []));
  for (const step of path) {
    const next: SelectionSetNode[] = [];
    for (const set of sets)
      visit(info, set, (field) => field.name.value === step && field.selectionSet && next.push(field.selectionSet));
    sets = next;
  }
  const names = new Set<string>();
  for (const set of sets) visit(info, set, (field) => names.add(field.name.value));
  return names;
}

function visit(
  info: GraphQLResolveInfo,
  set: SelectionSetNode,
  onField: (field: import('graphql').FieldNode) => unknown,
  seen = new Set<string>(),
): void {
  for (const selection of set.selections) {
    if (selection.kind === Kind.FIELD) onField(selection);
    else if (selection.kind === Kind.INLINE_FRAGMENT) visit(info, selection.selectionSet, onField, seen);
    else if (!seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      const fragment = info.fragments[selection.name.value];
      if (fragment) visit(info, fragment.selectionSet, onField, seen);
    }
  }
}

/**
 * A Prisma `select` with only the columns the asked-for fields read (`columns`: field → the
 * columns its resolver needs; `always`: columns needed whatever is asked, such as the key a cursor
 * is made of). Undefined (read every column) as soon as one field is not in `columns`: a field
 * added to the type later reads a whole row until it is listed, never a half one.
 */
export function selectFor<Column extends string>(
  fields: ReadonlySet<string>,
  columns: Readonly<Record<string, readonly Column[]>>,
  always: readonly NoInfer<Column>[],
): Record<Column, true> | undefined {
  const select = {} as Record<Column, true>;
  for (const column of always) select[column] = true;
  for (const field of fields) {
    if (field === '__typename') continue;
    const needs = columns[field];
    if (!needs) return undefined;
    for (const column of needs) select[column] = true;
  }
  return select;
}
