// SuiteCloud CLI for Node.js: `suitecloud project:validate --server` and `suitecloud project:deploy`
// run from this folder, after `suitecloud account:setup` (or account:setup:ci) for the target account.
module.exports = {
	defaultProjectFolder: "src",
	commands: {},
};
