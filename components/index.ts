/** container-native-db: the components a Pulumi program imports (`import { ContainerNativeDatabase } from "container-native-db"`). */
export * from "./api-settings";
export * from "./bake-script";
export * from "./cluster";
export * from "./config";
export * from "./database";
export * from "./fleet";
export * from "./iam";
export * from "./k8s-defaults";
export * from "./master";
export * from "./pipeline";
export * from "./tools-image";
export * from "./validate";
export * from "./from-config";
