// The git source adapter: public entry point.
export { GitSource, type GitSourceOptions, type GitSourceStats } from './git-source.js';
export { validateRepoUrl, classifyRepoUrl, validateBranchName, normaliseRevision, redactUrl, type RepoKind } from '../../git-cli/url.js';
