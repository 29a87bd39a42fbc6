export {
  createPageRenderer,
  DEFAULT_SCOPE_DESCRIPTIONS,
  pageStylesheet,
  PAGES_LOGO_PATH,
  PAGES_STYLESHEET_PATH,
  waitText,
  type AccountField,
  type AccountFormPage,
  type ConsentPage,
  type MessagePage,
  type PageLink,
  type ErrorPage,
  type LoginPage,
  type PageAssets,
  type PageOptions,
  type PageRenderer,
} from './render.js';
export { contentSecurityPolicy, pageHeaders } from './headers.js';
