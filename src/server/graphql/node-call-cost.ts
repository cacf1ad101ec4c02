import {
  type FragmentDefinitionNode,
  GraphQLError,
  type GraphQLNamedType,
  getNamedType,
  isInterfaceType,
  isObjectType,
  Kind,
  type SelectionSetNode,
  type ValidationRule,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { DEFAULT_PAGE_SIZE } from '../../lib/pagination.js';

/** Fields whose every resolution is one call to a node's API (`Type.field`). */
const NODE_CALL_FIELDS = new Set([
  'Streamer.streams',
  'Streamer.traffic',
  'Mutation.ping',
  'Mutation.createStream',
  'Mutation.deleteStream',
]);

/**
 * The cost of node calls, which GraphQL Armor's cost limit cannot weigh (it has no per-field
 * costs): the most node API calls an operation can make, each node-call field counted once per
 * item of every page around it (`first` as written; a variable or no `first` counts as the default
 * page size).
 * An operation whose worst case passes NODE_CALLS_PER_OPERATION is refused before it runs, as a
 * cost limit would; the run-time budget (NodeCallBudget) still bounds what variables leave open,
 * and the bytes.
 */
export function nodeCallCostRule(maxCalls: number): ValidationRule {
  return (context) => ({
    OperationDefinition(operation) {
      const schema = context.getSchema();
      const fragments = new Map<string, FragmentDefinitionNode>();
      for (const definition of context.getDocument().definitions) {
        if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
      }
      const typeNamed = (name: string | undefined, fallback: GraphQLNamedType) =>
        (name === undefined ? undefined : schema.getType(name)) ?? fallback;

      const worstCase = (selections: SelectionSetNode, parent: GraphQLNamedType, seen: Set<string>): number => {
        let calls = 0;
        for (const selection of selections.selections) {
          if (selection.kind === Kind.INLINE_FRAGMENT) {
            calls += worstCase(selection.selectionSet, typeNamed(selection.typeCondition?.name.value, parent), seen);
          } else if (selection.kind === Kind.FRAGMENT_SPREAD) {
            const fragment = fragments.get(selection.name.value);
            if (!fragment || seen.has(fragment.name.value)) continue; // cycles are another rule's error
            const type = typeNamed(fragment.typeCondition.name.value, parent);
            calls += worstCase(fragment.selectionSet, type, new Set([...seen, fragment.name.value]));
          } else {
            const own = NODE_CALL_FIELDS.has(`${parent.name}.${selection.name.value}`) ? 1 : 0;
            const definition =
              isObjectType(parent) || isInterfaceType(parent) ? parent.getFields()[selection.name.value] : undefined;
            if (!selection.selectionSet || !definition) {
              calls += own;
              continue;
            }
            // A page: `first` as written; a variable, or no `first` at all, is the default page.
            const paged = definition.args.some((a) => a.name === 'first');
            const first = selection.arguments?.find((a) => a.name.value === 'first')?.value;
            const items = first?.kind === Kind.INT ? Number(first.value) : paged ? DEFAULT_PAGE_SIZE : 1;
            calls += own + items * worstCase(selection.selectionSet, getNamedType(definition.type), seen);
          }
        }
        return calls;
      };

      const root = operation.operation === 'mutation' ? schema.getMutationType() : schema.getQueryType();
      if (!root || operation.operation === 'subscription') return;
      const calls = worstCase(operation.selectionSet, root, new Set());
      if (calls > maxCalls) {
        context.reportError(
          new GraphQLError(
            `this operation could make up to ${calls} node API calls; at most ${maxCalls} (NODE_CALLS_PER_OPERATION) are allowed: ask for fewer nodes (first) or fields`,
            { nodes: operation, extensions: { code: 'BUDGET_EXCEEDED', limit: maxCalls, cost: calls } },
          ),
        );
      }
    },
  });
}

/** The rule as a Yoga plugin, so it runs wherever the other limits do (HTTP, SSE, graphql-ws). */
export function useNodeCallCost(maxCalls: number): Plugin {
  const rule = nodeCallCostRule(maxCalls);
  return { onValidate: ({ addValidationRule }) => addValidationRule(rule) };
}
