import type { CodegenConfig } from '@graphql-codegen/cli';

// Typed documents for the tests: every `graphql(`…`)` in test/ is checked against schema.graphql
// by the type-checker, so a test cannot query a field the schema does not have.
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['test/**/*.ts', '!test/generated/**'],
  ignoreNoDocuments: true,
  generates: {
    'test/generated/': {
      preset: 'client',
      presetConfig: { gqlTagName: 'graphql', fragmentMasking: false },
      config: {
        importExtension: '.js',
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: 'string', JSON: 'unknown', UUID: 'string' },
      },
    },
  },
};

export default config;
