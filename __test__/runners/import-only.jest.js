// Run by __test__/runners.test.mjs under `jest --detectOpenHandles`: an import opens
// nothing a leak detector reports.
const auth = require('sonetel-auth')

test('the package imports', () => {
  expect(typeof auth.TokenManager).toBe('function')
})
