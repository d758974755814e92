<?php
// Installs WordPress, then exercises posts, comments, terms, search and
// options through wpdb. Prints one JSON object.
define('WP_INSTALLING', true);
// No MTA here: the install's notification mail is not the point.
function wp_mail() { return true; }
require __DIR__ . '/boot.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
$out = [];
$errors = [];
$r = wp_install('Ephpm Test', 'admin', 'admin@example.test', true, '', 'secret-pass-123');
$out['installed'] = is_blog_installed();
$out['admin_id'] = $r['user_id'];
if ($wpdb->last_error) $errors[] = $wpdb->last_error;
$out['blogname'] = get_option('blogname');
$cat = wp_insert_term('News', 'category');
$out['term'] = is_wp_error($cat) ? $cat->get_error_message() : 'ok';
$ids = [];
for ($i = 1; $i <= 12; $i++) {
    $ids[] = wp_insert_post([
        'post_title' => "Ephpm post $i",
        'post_content' => "Content of post $i with a needle" . ($i % 3 == 0 ? ' haystack' : ''),
        'post_status' => 'publish',
        'post_author' => 1,
        'post_category' => [is_array($cat) ? $cat['term_id'] : 1],
        'post_date' => sprintf('2024-03-%02d 12:00:00', $i),
    ], true);
    if ($wpdb->last_error) $errors[] = $wpdb->last_error;
}
$out['post_ids_ok'] = count(array_filter($ids, 'is_int'));
$c = wp_insert_comment(['comment_post_ID' => $ids[0], 'comment_content' => 'Nice!', 'comment_approved' => 1, 'comment_author' => 'Bob']);
$out['comment'] = $c > 0;
$out['comment_count'] = (int)get_post($ids[0])->comment_count;
$q = new WP_Query(['posts_per_page' => 5, 'paged' => 1]);
$out['front_titles'] = wp_list_pluck($q->posts, 'post_title');
$out['found_posts'] = (int)$q->found_posts;
$out['max_pages'] = (int)$q->max_num_pages;
$s = new WP_Query(['s' => 'haystack', 'posts_per_page' => 10]);
$out['search_found'] = (int)$s->found_posts;
$cq = new WP_Query(['cat' => is_array($cat) ? $cat['term_id'] : 1, 'posts_per_page' => 3]);
$out['category_found'] = (int)$cq->found_posts;
$out['month_archive'] = (int)(new WP_Query(['year' => 2024, 'monthnum' => 3, 'posts_per_page' => 1]))->found_posts;
wp_update_post(['ID' => $ids[1], 'post_title' => 'Edited title']);
$out['edited'] = get_post($ids[1])->post_title;
wp_delete_post($ids[2], true);
$out['deleted'] = get_post($ids[2]) === null;
update_option('ephpm_option', ['a' => 1, 'b' => "quote'd"]);
wp_cache_flush();
$out['option_roundtrip'] = get_option('ephpm_option');
$out['transient'] = set_transient('ephpm_t', 'v', 60) && get_transient('ephpm_t') === 'v';
$user = wp_authenticate('admin', 'secret-pass-123');
$out['login'] = !is_wp_error($user) && $user->ID == 1;
$out['db_version'] = $wpdb->db_version();
if ($wpdb->last_error) $errors[] = $wpdb->last_error;
$out['errors'] = $errors;
echo json_encode($out), "\n";
