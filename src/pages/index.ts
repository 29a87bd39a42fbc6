export {
  createPageRenderer,
  DEFAULT_SCOPE_DESCRIPTIONS,
  pageStylesheet,
  PAGES_LOGO_PATH,
  PAGES_STYLESHEET_PATH,
  waitText,
  type ConsentPage,
  type ErrorPage,
  type LoginPage,
  type LogoutPage,
  type NoticePage,
  type PageAssets,
  type PageOptions,
  type PageRenderer,
} from './render.js';
export { contentSecurityPolicy, pageHeaders } from './headers.js';
